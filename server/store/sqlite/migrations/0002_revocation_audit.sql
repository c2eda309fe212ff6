-- Revocation of targets, join tokens and admin tokens; security alerts on
-- targets; the append-only audit log. Times as in 0001: INTEGER microseconds,
-- NULL for the zero time (not revoked, no alert).

ALTER TABLE targets ADD COLUMN revoked_at INTEGER;
ALTER TABLE targets ADD COLUMN alert TEXT NOT NULL DEFAULT '';
ALTER TABLE targets ADD COLUMN alert_at INTEGER;

ALTER TABLE join_tokens ADD COLUMN revoked_at INTEGER;

ALTER TABLE admin_tokens ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
ALTER TABLE admin_tokens ADD COLUMN revoked_at INTEGER;
-- RevokeAdminToken falls back to the name; names are not unique.
CREATE INDEX admin_tokens_name ON admin_tokens (name);

CREATE TABLE audit_records (
    -- AUTOINCREMENT: IDs are never reused, even after the newest row is gone.
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    actor   TEXT NOT NULL DEFAULT '',
    action  TEXT NOT NULL DEFAULT '',
    object  TEXT NOT NULL DEFAULT '',
    peer    TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL DEFAULT ''
);
-- The index holds the rowid too, so it serves ORDER BY at, id.
CREATE INDEX audit_records_at ON audit_records (at);

-- The audit log is append-only for every connection, not only ours.
CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only');
END;

CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only');
END;

-- INSERT OR REPLACE deletes the old row without firing the delete trigger
-- (unless recursive_triggers is on), so an insert may not reuse an ID. An
-- insert without an ID reads NEW.id as -1 here, which no record has.
CREATE TRIGGER audit_records_no_replace BEFORE INSERT ON audit_records
WHEN EXISTS (SELECT 1 FROM audit_records WHERE id = NEW.id)
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only');
END;
