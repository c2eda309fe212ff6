package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/server/store"
)

// This file holds admin tokens and the audit log.

var adminTests = []namedTest{
	{"CreateAdminToken", testCreateAdminToken},
	{"GetAdminTokenByHash", testGetAdminTokenByHash},
	{"CountAdminTokens", testCountAdminTokens},
	{"ListAdminTokens", testListAdminTokens},
	{"RevokeAdminToken", testRevokeAdminToken},
	{"RevokeAdminTokenSharedName", testRevokeAdminTokenSharedName},
}

var auditTests = []namedTest{
	{"AppendAudit", testAppendAudit},
	{"ListAudit", testListAudit},
}

func adminToken(id, secret string) store.AdminToken {
	return store.AdminToken{ID: id, Name: "ci " + id, Hash: hash(secret), Role: "deployer",
		CreatedBy: "admin-token:bootstrap", CreatedAt: t0}
}

func testCreateAdminToken(t *testing.T, s store.Store) {
	ctx := t.Context()
	tok := adminToken("adm-1", "s1")
	tok.ExpiresAt = at(24 * time.Hour)
	must(t, s.CreateAdminToken(ctx, tok))
	got, err := s.GetAdminTokenByHash(ctx, hash("s1"))
	must(t, err)
	wantEqual(t, "admin token", got, tok)
	wantErr(t, s.CreateAdminToken(ctx, adminToken("adm-1", "s2")), store.ErrConflict, `"adm-1"`)
	wantErr(t, s.CreateAdminToken(ctx, adminToken("adm-2", "s1")), store.ErrConflict)
	n, err := s.CountAdminTokens(ctx)
	must(t, err)
	wantEqual(t, "admin tokens after the conflicts", n, 1)
}

func testGetAdminTokenByHash(t *testing.T, s store.Store) {
	ctx := t.Context()
	noExpiry := adminToken("adm-1", "s1")
	must(t, s.CreateAdminToken(ctx, noExpiry))
	must(t, s.CreateAdminToken(ctx, adminToken("adm-2", "s2")))
	got, err := s.GetAdminTokenByHash(ctx, hash("s1"))
	must(t, err)
	wantEqual(t, "admin token without expiry", got, noExpiry)
	_, err = s.GetAdminTokenByHash(ctx, hash("s3"))
	wantErr(t, err, store.ErrNotFound)
}

func testCountAdminTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i, id := range []string{"", "a", "b", "c"} {
		if id != "" {
			must(t, s.CreateAdminToken(ctx, adminToken(id, "secret-"+id)))
		}
		n, err := s.CountAdminTokens(ctx)
		must(t, err)
		wantEqual(t, "count", n, i)
	}
}

func testListAdminTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	ts, err := s.ListAdminTokens(ctx)
	must(t, err)
	wantEqual(t, "admin tokens of an empty store", len(ts), 0)
	a, b, c := adminToken("adm-a", "sa"), adminToken("adm-b", "sb"), adminToken("adm-c", "sc")
	a.CreatedAt, b.CreatedAt, c.CreatedAt = at(2*time.Second), at(time.Second), at(3*time.Second)
	c.ExpiresAt = at(time.Hour)
	for _, tok := range []store.AdminToken{a, b, c} {
		must(t, s.CreateAdminToken(ctx, tok))
	}
	revoked, err := s.RevokeAdminToken(ctx, "adm-a", at(time.Minute))
	must(t, err)
	ts, err = s.ListAdminTokens(ctx)
	must(t, err)
	wantEqual(t, "admin tokens, oldest first, revoked included", ts, []store.AdminToken{b, revoked, c})
}

func testRevokeAdminToken(t *testing.T, s store.Store) {
	ctx := t.Context()
	one, two := adminToken("adm-1", "s1"), adminToken("adm-2", "s2")
	must(t, s.CreateAdminToken(ctx, one))
	must(t, s.CreateAdminToken(ctx, two))

	t.Run("by id", func(t *testing.T) {
		want := one
		want.RevokedAt = at(time.Hour)
		got, err := s.RevokeAdminToken(ctx, "adm-1", at(time.Hour))
		must(t, err)
		wantEqual(t, "revoked admin token", got, want)
		got, err = s.RevokeAdminToken(ctx, "adm-1", at(2*time.Hour))
		must(t, err)
		wantEqual(t, "admin token revoked twice", got, want)
		// The caller refuses revoked tokens, so it must still find them.
		got, err = s.GetAdminTokenByHash(ctx, hash("s1"))
		must(t, err)
		wantEqual(t, "revoked admin token by hash", got, want)
	})
	t.Run("by name", func(t *testing.T) {
		want := two
		want.RevokedAt = at(3 * time.Hour)
		got, err := s.RevokeAdminToken(ctx, "ci adm-2", at(3*time.Hour))
		must(t, err)
		wantEqual(t, "admin token revoked by name", got, want)
		got, err = s.RevokeAdminToken(ctx, "ci adm-2", at(4*time.Hour))
		must(t, err)
		wantEqual(t, "admin token revoked by name twice", got, want)
		got, err = s.GetAdminTokenByHash(ctx, hash("s2"))
		must(t, err)
		wantEqual(t, "stored admin token", got, want)
	})
	t.Run("id before name", func(t *testing.T) {
		// A token whose name is another token's ID: the ID wins.
		named := adminToken("adm-3", "s3")
		named.Name = "adm-4"
		must(t, s.CreateAdminToken(ctx, named))
		must(t, s.CreateAdminToken(ctx, adminToken("adm-4", "s4")))
		got, err := s.RevokeAdminToken(ctx, "adm-4", at(time.Hour))
		must(t, err)
		wantEqual(t, "revoked token", got.ID, "adm-4")
		still, err := s.GetAdminTokenByHash(ctx, hash("s3"))
		must(t, err)
		wantEqual(t, "the token named adm-4", still, named)
	})
	t.Run("unknown", func(t *testing.T) {
		_, err := s.RevokeAdminToken(ctx, "nope", at(time.Hour))
		wantErr(t, err, store.ErrNotFound, `"nope"`)
	})
	n, err := s.CountAdminTokens(ctx)
	must(t, err)
	wantEqual(t, "admin tokens", n, 4)
}

// testRevokeAdminTokenSharedName: names are not unique. A name shared by
// several tokens means the only unrevoked one among them; when there is no
// single one the revocation fails with ErrConflict and changes nothing.
func testRevokeAdminTokenSharedName(t *testing.T, s store.Store) {
	ctx := t.Context()
	var toks []store.AdminToken
	for i := range 3 {
		tok := adminToken(fmt.Sprintf("adm-%d", i), fmt.Sprintf("s%d", i))
		tok.Name = "deploy"
		must(t, s.CreateAdminToken(ctx, tok))
		toks = append(toks, tok)
	}
	_, err := s.RevokeAdminToken(ctx, "adm-0", at(time.Hour))
	must(t, err)
	_, err = s.RevokeAdminToken(ctx, "deploy", at(2*time.Hour))
	wantErr(t, err, store.ErrConflict, `"deploy"`, "adm-1", "adm-2")
	ts, err := s.ListAdminTokens(ctx)
	must(t, err)
	wantEqual(t, "revoked after the refusal",
		ids(ts, func(t store.AdminToken) string { return fmt.Sprint(!t.RevokedAt.IsZero()) }),
		[]string{"true", "false", "false"})

	_, err = s.RevokeAdminToken(ctx, "adm-1", at(3*time.Hour))
	must(t, err)
	got, err := s.RevokeAdminToken(ctx, "deploy", at(4*time.Hour))
	must(t, err)
	want := toks[2]
	want.RevokedAt = at(4 * time.Hour)
	wantEqual(t, "the only unrevoked token named deploy", got, want)

	_, err = s.RevokeAdminToken(ctx, "deploy", at(5*time.Hour))
	wantErr(t, err, store.ErrConflict, `"deploy"`)
}

func testAppendAudit(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := store.AuditRecord{At: t0, Actor: "admin-token:ci", Action: "CreateDeployment", Object: "deployment/d1",
		Peer: "192.0.2.7:50412", Outcome: "denied: role viewer may not deploy"}
	must(t, s.AppendAudit(ctx, r))
	rs, err := s.ListAudit(ctx, time.Time{}, 0)
	must(t, err)
	if len(rs) != 1 || rs[0].ID <= 0 {
		t.Fatalf("records %+v, want one with a positive ID", rs)
	}
	r.ID = rs[0].ID
	wantEqual(t, "audit record", rs[0], r)

	t.Run("zero At is now", func(t *testing.T) {
		before := time.Now().Truncate(time.Microsecond)
		must(t, s.AppendAudit(ctx, store.AuditRecord{Actor: "server", Action: "start", Outcome: "ok"}))
		after := time.Now()
		rs, err := s.ListAudit(ctx, time.Time{}, 0)
		must(t, err)
		var got []store.AuditRecord
		for _, r := range rs {
			if r.Action == "start" {
				got = append(got, r)
			}
		}
		if len(got) != 1 || got[0].At.Before(before) || got[0].At.After(after) || got[0].At.Location() != time.UTC {
			t.Fatalf("records %+v, want one stamped between %v and %v, in UTC", rs, before, after)
		}
		if got[0].ID <= r.ID {
			t.Errorf("second record has ID %d, first %d: want increasing", got[0].ID, r.ID)
		}
	})
}

func testListAudit(t *testing.T, s store.Store) {
	ctx := t.Context()
	rs, err := s.ListAudit(ctx, time.Time{}, 0)
	must(t, err)
	wantEqual(t, "records of an empty store", len(rs), 0)
	// Appended out of time order; "c1" and "c2" share an instant.
	for _, r := range []struct {
		action string
		at     time.Duration
	}{{"a", 0}, {"c1", 2 * time.Second}, {"b", time.Second}, {"c2", 2 * time.Second}, {"e", 4 * time.Second}, {"d", 3 * time.Second}} {
		must(t, s.AppendAudit(ctx, store.AuditRecord{At: at(r.at), Actor: "server", Action: r.action, Outcome: "ok"}))
	}
	byAction := func(r store.AuditRecord) string { return r.Action }
	for _, c := range []struct {
		name  string
		since time.Time
		limit int
		want  []string
	}{
		{"all", time.Time{}, 0, []string{"a", "b", "c1", "c2", "d", "e"}},
		{"since, inclusive", at(2 * time.Second), 0, []string{"c1", "c2", "d", "e"}},
		{"since a microsecond later", at(2*time.Second + time.Microsecond), 0, []string{"d", "e"}},
		{"since after all", at(time.Hour), 0, []string{}},
		{"newest 3", time.Time{}, 3, []string{"c2", "d", "e"}},
		{"newest 1", time.Time{}, 1, []string{"e"}},
		{"limit above the count", time.Time{}, 100, []string{"a", "b", "c1", "c2", "d", "e"}},
		{"negative limit is none", time.Time{}, -1, []string{"a", "b", "c1", "c2", "d", "e"}},
		{"since and limit", at(time.Second), 4, []string{"c1", "c2", "d", "e"}},
		{"since and a small limit", at(time.Second), 2, []string{"d", "e"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rs, err := s.ListAudit(ctx, c.since, c.limit)
			must(t, err)
			wantEqual(t, "records", ids(rs, byAction), c.want)
		})
	}
	rs, err = s.ListAudit(ctx, time.Time{}, 0)
	must(t, err)
	appended := map[string]int64{}
	for _, r := range rs {
		appended[r.Action] = r.ID
	}
	// IDs follow the append order, whatever the records' times.
	order := []string{"a", "c1", "b", "c2", "e", "d"}
	for i := 1; i < len(order); i++ {
		if appended[order[i-1]] >= appended[order[i]] {
			t.Errorf("IDs %v do not follow the append order %v", appended, order)
			break
		}
	}
}
