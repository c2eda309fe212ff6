-- Rolling deployments, cancel, rollback, auto-deploy and required targets.
-- SQLite cannot change a CHECK constraint, so deployments (state
-- 'cancelled') and tasks (state 'waiting') are rebuilt, and with them the
-- tables that reference them (task_events, task_log_chunks). The new tables
-- reference each other under their temporary names; RENAME TABLE rewrites
-- those references. Old tables are dropped children first, so no foreign key
-- points at a table being dropped. Rowids are copied: reads order by them.

ALTER TABLE environments ADD COLUMN auto_deploy INTEGER NOT NULL DEFAULT 0 CHECK (auto_deploy IN (0, 1));
-- 0: every target must have run a release for it to be promoted.
ALTER TABLE environments ADD COLUMN required_targets INTEGER NOT NULL DEFAULT 0 CHECK (required_targets >= 0);

-- JSON of store.Rollout; '{}' is one wave, no pause, halt.
ALTER TABLE applications ADD COLUMN rollout TEXT NOT NULL DEFAULT '{}';

CREATE TABLE deployments_new (
    id                  TEXT PRIMARY KEY CHECK (id <> ''),
    release_id          TEXT NOT NULL REFERENCES releases (id),
    environment         TEXT NOT NULL REFERENCES environments (name),
    state               TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed', 'cancelled')),
    created_by          TEXT NOT NULL DEFAULT '',
    created_at          INTEGER NOT NULL,
    finished_at         INTEGER,
    rollout             TEXT NOT NULL DEFAULT '{}', -- JSON of store.Rollout
    kind                TEXT NOT NULL DEFAULT 'deploy' CHECK (kind <> ''),
    cancel_requested_at INTEGER
);

CREATE TABLE tasks_new (
    id                   TEXT PRIMARY KEY CHECK (id <> ''),
    deployment_id        TEXT NOT NULL REFERENCES deployments_new (id),
    target_id            TEXT NOT NULL REFERENCES targets (id),
    state                TEXT NOT NULL CHECK (state IN ('waiting', 'queued', 'assigned', 'accepted', 'pulling',
                             'starting', 'verifying', 'succeeded', 'failed', 'cancelled')),
    message              TEXT NOT NULL DEFAULT '',
    failure_kind         TEXT NOT NULL DEFAULT '',
    image_digest         TEXT NOT NULL DEFAULT '',
    container_id         TEXT NOT NULL DEFAULT '',
    last_event_seq       INTEGER NOT NULL DEFAULT 0,
    final_log_bytes      INTEGER NOT NULL DEFAULT -1,
    log_size             INTEGER NOT NULL DEFAULT 0,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    -- The wave of a rolling deployment, from 1.
    wave                 INTEGER NOT NULL DEFAULT 1 CHECK (wave >= 1),
    progress_bytes       INTEGER NOT NULL DEFAULT 0,
    progress_total_bytes INTEGER NOT NULL DEFAULT 0,
    UNIQUE (deployment_id, target_id)
);

CREATE TABLE task_events_new (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id       TEXT NOT NULL REFERENCES tasks_new (id),
    deployment_id TEXT NOT NULL REFERENCES deployments_new (id),
    seq           INTEGER NOT NULL,
    state         TEXT NOT NULL,
    message       TEXT NOT NULL DEFAULT '',
    image_digest  TEXT NOT NULL DEFAULT '',
    container_id  TEXT NOT NULL DEFAULT '',
    failure_kind  TEXT NOT NULL DEFAULT '',
    log_bytes     INTEGER NOT NULL DEFAULT 0,
    occurred_at   INTEGER NOT NULL,
    progress_bytes       INTEGER NOT NULL DEFAULT 0,
    progress_total_bytes INTEGER NOT NULL DEFAULT 0,
    UNIQUE (task_id, seq)
);

CREATE TABLE task_log_chunks_new (
    task_id TEXT NOT NULL REFERENCES tasks_new (id),
    start   INTEGER NOT NULL,
    data    BLOB NOT NULL,
    PRIMARY KEY (task_id, start)
);

INSERT INTO deployments_new (rowid, id, release_id, environment, state, created_by, created_at, finished_at)
    SELECT rowid, id, release_id, environment, state, created_by, created_at, finished_at FROM deployments;
INSERT INTO tasks_new (rowid, id, deployment_id, target_id, state, message, failure_kind, image_digest,
        container_id, last_event_seq, final_log_bytes, log_size, created_at, updated_at)
    SELECT rowid, id, deployment_id, target_id, state, message, failure_kind, image_digest,
        container_id, last_event_seq, final_log_bytes, log_size, created_at, updated_at FROM tasks;
INSERT INTO task_events_new (id, task_id, deployment_id, seq, state, message, image_digest, container_id,
        failure_kind, log_bytes, occurred_at)
    SELECT id, task_id, deployment_id, seq, state, message, image_digest, container_id,
        failure_kind, log_bytes, occurred_at FROM task_events;
INSERT INTO task_log_chunks_new (task_id, start, data) SELECT task_id, start, data FROM task_log_chunks;
-- Event IDs are never reused: keep the old counter if it ran past the rows.
UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'task_events'), 0))
    WHERE name = 'task_events_new';

DROP TABLE task_log_chunks;
DROP TABLE task_events;
DROP TABLE tasks;
DROP TABLE deployments;

ALTER TABLE deployments_new RENAME TO deployments;
ALTER TABLE tasks_new RENAME TO tasks;
ALTER TABLE task_events_new RENAME TO task_events;
ALTER TABLE task_log_chunks_new RENAME TO task_log_chunks;

CREATE INDEX deployments_created ON deployments (created_at);
CREATE INDEX deployments_release ON deployments (release_id);
CREATE INDEX deployments_environment ON deployments (environment, created_at);
-- ListRunningDeployments after a restart.
CREATE INDEX deployments_state ON deployments (state);
CREATE INDEX tasks_target_state ON tasks (target_id, state);
CREATE INDEX tasks_created ON tasks (created_at);
CREATE INDEX tasks_deployment_wave ON tasks (deployment_id, wave);
CREATE INDEX task_events_deployment ON task_events (deployment_id, id);
