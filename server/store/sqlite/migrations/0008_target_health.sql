-- Target health (docs/OPERATIONS.md): the agent's latest health report, as
-- the protobuf bytes of tentacle.v1.HealthReport, and when the server
-- received it, so that `tentaclectl target show` describes a target that is
-- offline. NULL: no report yet.
ALTER TABLE targets ADD COLUMN health BLOB;
ALTER TABLE targets ADD COLUMN health_at INTEGER;

-- The targets a deployment left out because they had no session when it
-- was created (unavailable_targets SKIP): JSON array of target names.
ALTER TABLE deployments ADD COLUMN skipped_targets TEXT NOT NULL DEFAULT '[]';

-- The applications last deployed to a target: its succeeded tasks, newest
-- first per application (TargetApplications).
CREATE INDEX tasks_target_updated ON tasks (target_id, state, updated_at);
