-- Times are INTEGER microseconds since the Unix epoch, UTC; NULL is the zero
-- time. Microseconds cover years 1 to 9999 and match PostgreSQL's precision.

CREATE TABLE environments (
    name        TEXT PRIMARY KEY CHECK (name <> ''),
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);

CREATE TABLE applications (
    name             TEXT PRIMARY KEY CHECK (name <> ''),
    image_repository TEXT NOT NULL,
    run_spec         TEXT NOT NULL, -- JSON of spec.RunSpec
    created_at       INTEGER NOT NULL
);

CREATE TABLE releases (
    id               TEXT PRIMARY KEY CHECK (id <> ''),
    application      TEXT NOT NULL REFERENCES applications (name),
    version          TEXT NOT NULL CHECK (version <> ''),
    image_repository TEXT NOT NULL,
    image_tag        TEXT NOT NULL,
    image_digest     TEXT NOT NULL DEFAULT '', -- '' until pinned
    run_spec         TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    UNIQUE (application, version)
);
CREATE INDEX releases_created ON releases (created_at);

CREATE TABLE targets (
    id               TEXT PRIMARY KEY CHECK (id <> ''),
    name             TEXT NOT NULL UNIQUE,
    environment      TEXT NOT NULL REFERENCES environments (name),
    roles            TEXT NOT NULL, -- JSON array of strings
    hostname         TEXT NOT NULL DEFAULT '',
    os               TEXT NOT NULL DEFAULT '',
    arch             TEXT NOT NULL DEFAULT '',
    agent_version    TEXT NOT NULL DEFAULT '',
    docker_version   TEXT NOT NULL DEFAULT '',
    cert_fingerprint TEXT NOT NULL DEFAULT '',
    cert_not_after   INTEGER,
    enrolled_at      INTEGER NOT NULL,
    last_seen_at     INTEGER
);
CREATE INDEX targets_environment ON targets (environment, name);

CREATE TABLE join_tokens (
    id           TEXT PRIMARY KEY CHECK (id <> ''),
    -- An empty hash would match an empty secret.
    secret_hash  BLOB NOT NULL CHECK (length(secret_hash) > 0),
    environment  TEXT NOT NULL REFERENCES environments (name),
    roles        TEXT NOT NULL,
    expires_at   INTEGER,
    uses_allowed INTEGER NOT NULL,
    uses_count   INTEGER NOT NULL DEFAULT 0,
    created_by   TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL
);

CREATE TABLE admin_tokens (
    id         TEXT PRIMARY KEY CHECK (id <> ''),
    name       TEXT NOT NULL,
    hash       BLOB NOT NULL UNIQUE CHECK (length(hash) > 0),
    role       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER
);

CREATE TABLE deployments (
    id          TEXT PRIMARY KEY CHECK (id <> ''),
    release_id  TEXT NOT NULL REFERENCES releases (id),
    environment TEXT NOT NULL REFERENCES environments (name),
    state       TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
    created_by  TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX deployments_created ON deployments (created_at);
CREATE INDEX deployments_release ON deployments (release_id);
CREATE INDEX deployments_environment ON deployments (environment, created_at);

CREATE TABLE tasks (
    id              TEXT PRIMARY KEY CHECK (id <> ''),
    deployment_id   TEXT NOT NULL REFERENCES deployments (id),
    target_id       TEXT NOT NULL REFERENCES targets (id),
    state           TEXT NOT NULL CHECK (state IN ('queued', 'assigned', 'accepted', 'pulling',
                        'starting', 'verifying', 'succeeded', 'failed', 'cancelled')),
    message         TEXT NOT NULL DEFAULT '',
    failure_kind    TEXT NOT NULL DEFAULT '',
    image_digest    TEXT NOT NULL DEFAULT '',
    container_id    TEXT NOT NULL DEFAULT '',
    last_event_seq  INTEGER NOT NULL DEFAULT 0,
    final_log_bytes INTEGER NOT NULL DEFAULT -1,
    -- The stored log length, kept here so an append reads one row, not the log.
    log_size        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    -- One task per target in a deployment.
    UNIQUE (deployment_id, target_id)
);
CREATE INDEX tasks_target_state ON tasks (target_id, state);
CREATE INDEX tasks_created ON tasks (created_at);

CREATE TABLE task_events (
    -- AUTOINCREMENT: IDs are never reused, so afterID cursors stay valid.
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id       TEXT NOT NULL REFERENCES tasks (id),
    -- Copied from the task so a deployment's event feed is one index range.
    deployment_id TEXT NOT NULL REFERENCES deployments (id),
    seq           INTEGER NOT NULL,
    state         TEXT NOT NULL, -- '' for a progress event that keeps the state
    message       TEXT NOT NULL DEFAULT '',
    image_digest  TEXT NOT NULL DEFAULT '',
    container_id  TEXT NOT NULL DEFAULT '',
    failure_kind  TEXT NOT NULL DEFAULT '',
    log_bytes     INTEGER NOT NULL DEFAULT 0,
    occurred_at   INTEGER NOT NULL,
    UNIQUE (task_id, seq)
);
CREATE INDEX task_events_deployment ON task_events (deployment_id, id);

-- A task's log is the concatenation of its chunks in start order; chunks
-- never overlap and leave no gap (AppendTaskLog trims and checks).
CREATE TABLE task_log_chunks (
    task_id TEXT NOT NULL REFERENCES tasks (id),
    start   INTEGER NOT NULL,
    data    BLOB NOT NULL,
    PRIMARY KEY (task_id, start)
);
