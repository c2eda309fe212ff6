-- Variables of an application: one row per (name, scope). An empty scope
-- field does not narrow. A sensitive value is never stored in clear: value
-- is '' and sealed holds what the server sealed (AES-GCM under its
-- variables.key); the store only keeps the bytes.
CREATE TABLE variables (
    application       TEXT NOT NULL REFERENCES applications (name),
    name              TEXT NOT NULL CHECK (name <> ''),
    scope_environment TEXT NOT NULL DEFAULT '',
    scope_role        TEXT NOT NULL DEFAULT '',
    scope_target      TEXT NOT NULL DEFAULT '',
    value             TEXT NOT NULL DEFAULT '',
    sensitive         INTEGER NOT NULL DEFAULT 0,
    sealed            BLOB,
    updated_at        INTEGER NOT NULL,
    updated_by        TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (application, name, scope_environment, scope_role, scope_target),
    CHECK ((sensitive = 0 AND sealed IS NULL) OR (sensitive = 1 AND value = '' AND length(sealed) > 0))
);

-- The variables of a release: a copy of the application's variables taken
-- when the release was created, never changed afterwards.
CREATE TABLE release_variables (
    release_id        TEXT NOT NULL REFERENCES releases (id),
    name              TEXT NOT NULL CHECK (name <> ''),
    scope_environment TEXT NOT NULL DEFAULT '',
    scope_role        TEXT NOT NULL DEFAULT '',
    scope_target      TEXT NOT NULL DEFAULT '',
    value             TEXT NOT NULL DEFAULT '',
    sensitive         INTEGER NOT NULL DEFAULT 0,
    sealed            BLOB,
    updated_at        INTEGER NOT NULL,
    updated_by        TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (release_id, name, scope_environment, scope_role, scope_target),
    CHECK ((sensitive = 0 AND sealed IS NULL) OR (sensitive = 1 AND value = '' AND length(sealed) > 0))
);
