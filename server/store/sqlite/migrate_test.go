package sqlite

import (
	"database/sql"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/server/store"
)

// TestAuditAppendOnly checks that the schema itself, not only the Store's
// methods, refuses to change or remove audit records.
func TestAuditAppendOnly(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	for _, outcome := range []string{"ok", "denied: role viewer"} {
		if err := s.AppendAudit(ctx, store.AuditRecord{At: time.Now(), Actor: "admin-token:ci",
			Action: "CreateDeployment", Object: "deployment/d1", Peer: "10.0.0.1:5555", Outcome: outcome}); err != nil {
			t.Fatal(err)
		}
	}
	before := auditDump(t, s)
	for _, stmt := range []string{
		`UPDATE audit_records SET outcome = 'ok'`,
		`UPDATE audit_records SET id = id + 100 WHERE id = 1`,
		`DELETE FROM audit_records`,
		`DELETE FROM audit_records WHERE id = 2`,
		`INSERT OR REPLACE INTO audit_records (id, at, outcome) VALUES (1, 0, 'forged')`,
		`REPLACE INTO audit_records (id, at, outcome) VALUES (2, 0, 'forged')`,
		`INSERT INTO audit_records (id, at, outcome) VALUES (1, 0, 'forged')
			ON CONFLICT (id) DO UPDATE SET outcome = excluded.outcome`,
	} {
		_, err := s.write.ExecContext(ctx, stmt)
		if err == nil || !strings.Contains(err.Error(), "audit records are append-only") {
			t.Errorf("%s: %v, want the append-only error", stmt, err)
		}
	}
	if after := auditDump(t, s); after != before {
		t.Errorf("audit records changed:\n%s\nwas\n%s", after, before)
	}
	// Appending still works, with the next ID.
	if err := s.AppendAudit(ctx, store.AuditRecord{Actor: "server", Action: "start", Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	rs, err := s.ListAudit(ctx, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 || rs[2].ID != 3 || rs[2].At.IsZero() {
		t.Errorf("after a refused change, appended %+v, want the third record with ID 3, stamped now", rs)
	}
}

func auditDump(t *testing.T, s *Store) string {
	t.Helper()
	var dump sql.NullString
	if err := s.read.QueryRowContext(t.Context(), `SELECT group_concat(id || ' ' || at || ' ' || actor || ' ' ||
		action || ' ' || object || ' ' || peer || ' ' || outcome, char(10)) FROM audit_records`).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	return dump.String
}

// TestMigrateFromVersion1 builds a database with only the first migration,
// as a server of the previous release left it, and opens it: the rest apply
// and the old rows read back as unrevoked, without alerts.
func TestMigrateFromVersion1(t *testing.T) {
	ctx := t.Context()
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tentacle.db")
	old, err := sql.Open("sqlite", dsn(path, url.Values{"_txlock": {"immediate"}}))
	if err != nil {
		t.Fatal(err)
	}
	for done := false; !done; {
		if done, err = migrateStep(ctx, old, ms[:1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, stmt := range []string{
		`INSERT INTO environments (name, created_at) VALUES ('prod', 1)`,
		`INSERT INTO targets (id, name, environment, roles, enrolled_at) VALUES ('t1', 'web-1', 'prod', '["web"]', 2)`,
		`INSERT INTO join_tokens (id, secret_hash, environment, roles, expires_at, uses_allowed, created_at)
			VALUES ('j1', x'01', 'prod', '[]', 4102444800000000, 1, 3)`,
		`INSERT INTO admin_tokens (id, name, hash, role, created_at) VALUES ('a1', 'bootstrap', x'02', 'admin', 4)`,
	} {
		if _, err := old.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var version int
	if err := s.read.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version != len(ms) || version < 2 {
		t.Fatalf("schema version %d after reopen, want %d (at least 2)", version, len(ms))
	}

	tg, err := s.GetTargetByName(ctx, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	if tg.ID != "t1" || !tg.RevokedAt.IsZero() || tg.Alert != "" || !tg.AlertAt.IsZero() {
		t.Errorf("old target reads back as %+v, want t1, unrevoked, no alert", tg)
	}
	if ts, err := s.ListTargetsInEnvironment(ctx, "prod"); err != nil || len(ts) != 1 {
		t.Errorf("prod targets: %v, %v; want the old target", ts, err)
	}
	jts, err := s.ListJoinTokens(ctx)
	if err != nil || len(jts) != 1 || !jts[0].RevokedAt.IsZero() {
		t.Errorf("join tokens: %+v, %v; want j1, unrevoked", jts, err)
	}
	ats, err := s.ListAdminTokens(ctx)
	if err != nil || len(ats) != 1 || ats[0].CreatedBy != "" || !ats[0].RevokedAt.IsZero() {
		t.Errorf("admin tokens: %+v, %v; want a1, unrevoked", ats, err)
	}
	if _, err := s.RevokeAdminToken(ctx, "bootstrap", time.Now()); err != nil {
		t.Errorf("revoke the old admin token by name: %v", err)
	}
	if err := s.AppendAudit(ctx, store.AuditRecord{Actor: "server", Action: "migrate", Outcome: "ok"}); err != nil {
		t.Errorf("append audit after the migration: %v", err)
	}
}
