-- Deployment deadlines: tasks still waiting for their target at
-- deadline_at fail (FailOverdueTasks). NULL: no deadline (deployments made
-- before this migration).
ALTER TABLE deployments ADD COLUMN deadline_at INTEGER;

-- FailOverdueTasks runs every few seconds: it reads only running
-- deployments past their deadline.
CREATE INDEX deployments_running_deadline ON deployments (deadline_at) WHERE state = 'running';
