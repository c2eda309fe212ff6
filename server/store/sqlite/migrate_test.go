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
	s := openAt(t, ms[:1], []string{
		`INSERT INTO environments (name, created_at) VALUES ('prod', 1)`,
		`INSERT INTO targets (id, name, environment, roles, enrolled_at) VALUES ('t1', 'web-1', 'prod', '["web"]', 2)`,
		`INSERT INTO join_tokens (id, secret_hash, environment, roles, expires_at, uses_allowed, created_at)
			VALUES ('j1', x'01', 'prod', '[]', 4102444800000000, 1, 3)`,
		`INSERT INTO admin_tokens (id, name, hash, role, created_at) VALUES ('a1', 'bootstrap', x'02', 'admin', 4)`,
	})
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

// TestMigrateRolloutFromVersion4 fills a database at schema 4 with a
// finished deployment (events, log) and a running one, then opens it: the
// rebuilt tables keep every row, order and event ID, the foreign keys hold,
// and the new states are accepted.
func TestMigrateRolloutFromVersion4(t *testing.T) {
	ctx := t.Context()
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	s := openAt(t, ms[:4], []string{
		`INSERT INTO environments (name, created_at) VALUES ('dev', 1), ('prod', 2)`,
		`INSERT INTO applications (name, image_repository, run_spec, created_at, roles) VALUES ('web', 'team/web', '{}', 3, '["web"]')`,
		`INSERT INTO releases (id, application, version, image_repository, image_tag, run_spec, created_at)
			VALUES ('r1', 'web', '1.0', 'team/web', '1.0', '{}', 4)`,
		`INSERT INTO targets (id, name, environment, roles, enrolled_at) VALUES ('t1', 'web-1', 'prod', '["web"]', 5)`,
		// Inserted out of time order: reads break ties on rowid.
		`INSERT INTO deployments (id, release_id, environment, state, created_by, created_at, finished_at)
			VALUES ('d-done', 'r1', 'prod', 'succeeded', 'alice', 10, 20), ('d-run', 'r1', 'prod', 'running', 'bob', 10, NULL)`,
		`INSERT INTO tasks (id, deployment_id, target_id, state, last_event_seq, final_log_bytes, log_size, created_at, updated_at)
			VALUES ('k-done', 'd-done', 't1', 'succeeded', 2, 5, 5, 10, 20), ('k-run', 'd-run', 't1', 'pulling', 1, -1, 0, 10, 11)`,
		`INSERT INTO task_events (task_id, deployment_id, seq, state, occurred_at) VALUES
			('k-done', 'd-done', 1, 'pulling', 11), ('k-done', 'd-done', 2, 'succeeded', 20), ('k-run', 'd-run', 1, 'pulling', 11)`,
		`INSERT INTO task_log_chunks (task_id, start, data) VALUES ('k-done', 0, x'68656c6c6f')`,
	})
	var fkProblems int
	if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM pragma_foreign_key_check`).Scan(&fkProblems); err != nil {
		t.Fatal(err)
	}
	if fkProblems != 0 {
		t.Fatalf("%d foreign key violations after the migration", fkProblems)
	}
	ds, err := s.ListDeployments(ctx, store.DeploymentFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].ID != "d-run" || ds[1].ID != "d-done" || ds[1].State != store.DeploymentSucceeded ||
		ds[1].Kind != store.KindDeploy || ds[1].CreatedBy != "alice" || ds[1].FinishedAt.IsZero() {
		t.Fatalf("deployments after the migration: %+v", ds)
	}
	running, err := s.ListRunningDeployments(ctx)
	if err != nil || len(running) != 1 || running[0].ID != "d-run" {
		t.Fatalf("running deployments: %+v, %v", running, err)
	}
	tk, err := s.GetTask(ctx, "k-done")
	if err != nil || tk.Wave != 1 || tk.FinalLogBytes != 5 || tk.LastEventSeq != 2 || tk.State != store.TaskSucceeded {
		t.Fatalf("old task: %+v, %v", tk, err)
	}
	if data, err := s.ReadTaskLog(ctx, "k-done", 0, 100); err != nil || string(data) != "hello" {
		t.Fatalf("old log: %q, %v", data, err)
	}
	es, err := s.ListDeploymentEvents(ctx, "d-done", 0)
	if err != nil || len(es) != 2 || es[0].ID != 1 || es[1].ID != 2 {
		t.Fatalf("old events: %+v, %v", es, err)
	}
	// New events continue the ID sequence; the running deployment can be
	// cancelled and ends cancelled.
	if _, err := s.RequestCancelDeployment(ctx, "d-run", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendTaskEvent(ctx, store.TaskEvent{TaskID: "k-run", Sequence: 2, State: store.TaskCancelled}); err != nil {
		t.Fatal(err)
	}
	es, err = s.ListDeploymentEvents(ctx, "d-run", 0)
	if err != nil || len(es) != 2 || es[1].ID != 4 {
		t.Fatalf("events after the migration: %+v, %v; want the new one with ID 4", es, err)
	}
	if d, err := s.GetDeployment(ctx, "d-run"); err != nil || d.State != store.DeploymentCancelled {
		t.Fatalf("cancelled deployment: %+v, %v", d, err)
	}
	// The waiting state is admitted.
	if err := s.CreateDeployment(ctx, store.Deployment{ID: "d-new", ReleaseID: "r1", Environment: "prod"},
		[]store.Task{{ID: "k-new", TargetID: "t1", State: store.TaskWaiting, Wave: 2}}); err != nil {
		t.Fatalf("a waiting task after the migration: %v", err)
	}
}

// openAt builds a database with only the migrations ms, as an older server
// left it, runs stmts on it, and opens it: the remaining migrations apply.
func openAt(t *testing.T, ms []migration, stmts []string) *Store {
	t.Helper()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "tentacle.db")
	old, err := sql.Open("sqlite", dsn(path, url.Values{"_txlock": {"immediate"}, "_pragma": {"foreign_keys(1)"}}))
	if err != nil {
		t.Fatal(err)
	}
	for done := false; !done; {
		if done, err = migrateStep(ctx, old, ms); err != nil {
			t.Fatal(err)
		}
	}
	for _, stmt := range stmts {
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
	t.Cleanup(func() { s.Close() })
	return s
}
