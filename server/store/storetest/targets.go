package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/server/store"
)

var targetTests = []namedTest{
	{"CreateJoinToken", testCreateJoinToken},
	{"ListJoinTokens", testListJoinTokens},
	{"EnrollTarget", testEnrollTarget},
	{"EnrollTargetRejected", testEnrollTargetRejected},
	{"EnrollTargetNames", testEnrollTargetNames},
	{"GetTarget", testGetTarget},
	{"ListTargets", testListTargets},
	{"ListTargetsInEnvironment", testListTargetsInEnvironment},
	{"MarkTargetSeen", testMarkTargetSeen},
}

func joinToken(id, env string, uses int) store.JoinToken {
	return store.JoinToken{
		ID: id, SecretHash: hash("secret-" + id), Environment: env, Roles: []string{"web", "db"},
		ExpiresAt: at(time.Hour), UsesAllowed: uses, CreatedBy: "alice", CreatedAt: t0,
	}
}

func testCreateJoinToken(t *testing.T, s store.Store) {
	f := newFixture(t, s, 0)
	tok := joinToken("tok-1", "prod", 3)
	must(t, s.CreateJoinToken(f.ctx, tok))
	ts, err := s.ListJoinTokens(f.ctx)
	must(t, err)
	wantEqual(t, "join tokens", ts, []store.JoinToken{tok})

	wantErr(t, s.CreateJoinToken(f.ctx, joinToken("tok-1", "dev", 1)), store.ErrConflict, `"tok-1"`)
	wantErr(t, s.CreateJoinToken(f.ctx, joinToken("tok-2", "nope", 1)), store.ErrNotFound, `"nope"`)
	ts, err = s.ListJoinTokens(f.ctx)
	must(t, err)
	wantEqual(t, "join tokens after the failures", ts, []store.JoinToken{tok})
}

func testListJoinTokens(t *testing.T, s store.Store) {
	f := newFixture(t, s, 0)
	ts, err := s.ListJoinTokens(f.ctx)
	must(t, err)
	if len(ts) != 0 {
		t.Fatalf("lists %d join tokens, want none", len(ts))
	}
	a, b := joinToken("tok-b", "prod", 1), joinToken("tok-a", "dev", 2)
	b.CreatedAt = at(time.Second)
	must(t, s.CreateJoinToken(f.ctx, a))
	must(t, s.CreateJoinToken(f.ctx, b))
	_, err = s.EnrollTarget(f.ctx, "tok-a", hash("secret-tok-a"), at(time.Minute), store.Target{ID: "t1", Name: "h1"})
	must(t, err)
	b.UsesCount = 1
	ts, err = s.ListJoinTokens(f.ctx)
	must(t, err)
	wantEqual(t, "join tokens, oldest first, with uses", ts, []store.JoinToken{a, b})
}

func testEnrollTarget(t *testing.T, s store.Store) {
	f := newFixture(t, s, 0)
	must(t, s.CreateJoinToken(f.ctx, joinToken("tok-1", "prod", 2)))
	in := store.Target{
		ID: "tgt-1", Name: "web-1", Environment: "dev", Roles: []string{"ignored"},
		Hostname: "web-1.example.com", OS: "linux", Arch: "amd64", AgentVersion: "1.2.3", DockerVersion: "28.5.2",
		CertFingerprint: strings.Repeat("ab", 32), CertNotAfter: at(90 * 24 * time.Hour),
	}
	now := at(time.Minute)
	got, err := s.EnrollTarget(f.ctx, "tok-1", hash("secret-tok-1"), now, in)
	must(t, err)
	want := in
	want.Environment, want.Roles = "prod", []string{"web", "db"} // from the token
	want.EnrolledAt = now
	wantEqual(t, "enrolled target", got, want)
	stored, err := s.GetTarget(f.ctx, "tgt-1")
	must(t, err)
	wantEqual(t, "stored target", stored, want)
	ts, err := s.ListJoinTokens(f.ctx)
	must(t, err)
	wantEqual(t, "uses after one enrollment", ts[0].UsesCount, 1)

	t.Run("explicit EnrolledAt", func(t *testing.T) {
		got, err := s.EnrollTarget(f.ctx, "tok-1", hash("secret-tok-1"), now,
			store.Target{ID: "tgt-2", Name: "web-2", EnrolledAt: at(2 * time.Minute)})
		must(t, err)
		wantEqual(t, "EnrolledAt", got.EnrolledAt, at(2*time.Minute))
	})
}

func testEnrollTargetRejected(t *testing.T, s store.Store) {
	f := newFixture(t, s, 0)
	expiring := joinToken("tok-exp", "prod", 5)
	expiring.ExpiresAt = at(time.Hour)
	must(t, s.CreateJoinToken(f.ctx, expiring))
	must(t, s.CreateJoinToken(f.ctx, joinToken("tok-once", "prod", 1)))
	must(t, s.CreateJoinToken(f.ctx, joinToken("tok-many", "prod", 5)))
	_, err := s.EnrollTarget(f.ctx, "tok-once", hash("secret-tok-once"), at(time.Minute), store.Target{ID: "first", Name: "first"})
	must(t, err)
	must(t, s.CreateJoinToken(f.ctx, joinToken("tok-other", "prod", 5)))

	cases := []struct {
		name   string
		token  string
		secret []byte
		now    time.Time
		target store.Target
		err    error
		says   string
	}{
		{"unknown token", "tok-nope", hash("secret-tok-nope"), at(time.Minute), store.Target{ID: "t", Name: "t"},
			store.ErrTokenInvalid, `join token "tok-nope" is unknown`},
		{"wrong secret", "tok-many", hash("guess"), at(time.Minute), store.Target{ID: "t", Name: "t"},
			store.ErrTokenInvalid, "unknown"},
		{"empty secret", "tok-many", nil, at(time.Minute), store.Target{ID: "t", Name: "t"},
			store.ErrTokenInvalid, "unknown"},
		{"expired", "tok-exp", hash("secret-tok-exp"), at(2 * time.Hour), store.Target{ID: "t", Name: "t"},
			store.ErrTokenInvalid, "expired"},
		{"expiring this instant", "tok-exp", hash("secret-tok-exp"), at(time.Hour), store.Target{ID: "t", Name: "t"},
			store.ErrTokenInvalid, "expired"},
		{"used up", "tok-once", hash("secret-tok-once"), at(time.Minute), store.Target{ID: "t", Name: "t"},
			store.ErrTokenInvalid, "used up"},
		{"target ID taken", "tok-other", hash("secret-tok-other"), at(time.Minute), store.Target{ID: "first", Name: "again"},
			store.ErrConflict, `"first"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, err := s.ListJoinTokens(f.ctx)
			must(t, err)
			_, err = s.EnrollTarget(f.ctx, c.token, c.secret, c.now, c.target)
			wantErr(t, err, c.err)
			if !strings.Contains(err.Error(), c.says) {
				t.Errorf("error %q does not say %q", err, c.says)
			}
			after, err := s.ListJoinTokens(f.ctx)
			must(t, err)
			wantEqual(t, "join tokens (no use consumed)", after, before)
		})
	}

	t.Run("wrong secret reads as unknown", func(t *testing.T) {
		// The message must not tell a guesser that the token exists.
		_, errWrong := s.EnrollTarget(f.ctx, "tok-many", hash("guess"), at(time.Minute), store.Target{ID: "t", Name: "t"})
		_, errUnknown := s.EnrollTarget(f.ctx, "tok-many-nope", hash("guess"), at(time.Minute), store.Target{ID: "t", Name: "t"})
		wrong := strings.ReplaceAll(errWrong.Error(), "tok-many", "X")
		unknown := strings.ReplaceAll(errUnknown.Error(), "tok-many-nope", "X")
		if wrong != unknown {
			t.Errorf("wrong secret says %q, unknown token says %q", errWrong, errUnknown)
		}
	})
	t.Run("expired token with wrong secret reads as unknown", func(t *testing.T) {
		_, err := s.EnrollTarget(f.ctx, "tok-exp", hash("guess"), at(2*time.Hour), store.Target{ID: "t", Name: "t"})
		wantErr(t, err, store.ErrTokenInvalid, "unknown")
	})
	ts, err := s.ListTargets(f.ctx)
	must(t, err)
	wantEqual(t, "targets after the rejections", ids(ts, func(t store.Target) string { return t.ID }), []string{"first"})
}

func testEnrollTargetNames(t *testing.T, s store.Store) {
	f := newFixture(t, s, 0)
	must(t, s.CreateJoinToken(f.ctx, joinToken("tok", "prod", 10)))
	enroll := func(id, name string) string {
		t.Helper()
		tg, err := s.EnrollTarget(f.ctx, "tok", hash("secret-tok"), at(time.Minute), store.Target{ID: id, Name: name})
		must(t, err)
		return tg.Name
	}
	got := []string{
		enroll("a", "web"),
		enroll("b", "web"),
		enroll("c", "web"),
		enroll("d", "web-2"), // taken by b: suffixed again
		enroll("e", "web-"),
		enroll("f", "web.x"),
		enroll("g", "web"),
	}
	wantEqual(t, "names", got, []string{"web", "web-2", "web-3", "web-2-2", "web-", "web.x", "web-4"})
}

func testGetTarget(t *testing.T, s store.Store) {
	f := newFixture(t, s, 1)
	got, err := s.GetTarget(f.ctx, f.targets[0].ID)
	must(t, err)
	wantEqual(t, "target", got, f.targets[0])
	if !got.LastSeenAt.IsZero() {
		t.Errorf("LastSeenAt = %v before any session, want zero", got.LastSeenAt)
	}
	_, err = s.GetTarget(f.ctx, "tgt-nope")
	wantErr(t, err, store.ErrNotFound, `"tgt-nope"`)
}

func testListTargets(t *testing.T, s store.Store) {
	f := newFixture(t, s, 0)
	ts, err := s.ListTargets(f.ctx)
	must(t, err)
	if len(ts) != 0 {
		t.Fatalf("lists %d targets, want none", len(ts))
	}
	must(t, s.CreateJoinToken(f.ctx, joinToken("tok", "prod", 3)))
	for id, name := range map[string]string{"1": "zulu", "2": "alpha", "3": "mike"} {
		_, err := s.EnrollTarget(f.ctx, "tok", hash("secret-tok"), at(time.Minute), store.Target{ID: id, Name: name})
		must(t, err)
	}
	ts, err = s.ListTargets(f.ctx)
	must(t, err)
	wantEqual(t, "targets by name", ids(ts, func(t store.Target) string { return t.Name }), []string{"alpha", "mike", "zulu"})
}

func testListTargetsInEnvironment(t *testing.T, s store.Store) {
	f := newFixture(t, s, 2) // host-00, host-01 in prod
	must(t, s.CreateJoinToken(f.ctx, joinToken("tok-dev", "dev", 1)))
	_, err := s.EnrollTarget(f.ctx, "tok-dev", hash("secret-tok-dev"), at(time.Minute), store.Target{ID: "d", Name: "aaa-dev"})
	must(t, err)
	byName := func(t store.Target) string { return t.Name }
	ts, err := s.ListTargetsInEnvironment(f.ctx, "prod")
	must(t, err)
	wantEqual(t, "prod targets", ids(ts, byName), []string{"host-00", "host-01"})
	ts, err = s.ListTargetsInEnvironment(f.ctx, "dev")
	must(t, err)
	wantEqual(t, "dev targets", ids(ts, byName), []string{"aaa-dev"})
	must(t, s.CreateEnvironment(f.ctx, store.Environment{Name: "empty"}))
	ts, err = s.ListTargetsInEnvironment(f.ctx, "empty")
	must(t, err)
	wantEqual(t, "targets of an empty environment", len(ts), 0)
	_, err = s.ListTargetsInEnvironment(f.ctx, "nope")
	wantErr(t, err, store.ErrNotFound, `"nope"`)
}

func testMarkTargetSeen(t *testing.T, s store.Store) {
	f := newFixture(t, s, 1)
	id := f.targets[0].ID
	seen := store.TargetSeen{Hostname: "h.example.com", OS: "windows", Arch: "arm64",
		AgentVersion: "1.3.0", DockerVersion: "29.0.0", At: at(10 * time.Minute)}
	must(t, s.MarkTargetSeen(f.ctx, id, seen))
	got, err := s.GetTarget(f.ctx, id)
	must(t, err)
	want := f.targets[0]
	want.Hostname, want.OS, want.Arch = seen.Hostname, seen.OS, seen.Arch
	want.AgentVersion, want.DockerVersion, want.LastSeenAt = seen.AgentVersion, seen.DockerVersion, seen.At
	wantEqual(t, "target after MarkTargetSeen", got, want)

	wantErr(t, s.MarkTargetSeen(f.ctx, "tgt-nope", seen), store.ErrNotFound, `"tgt-nope"`)

	// A heartbeat moves the time only: what Hello reported stays.
	must(t, s.TouchTarget(f.ctx, id, at(20*time.Minute)))
	got, err = s.GetTarget(f.ctx, id)
	must(t, err)
	want.LastSeenAt = at(20 * time.Minute)
	wantEqual(t, "target after TouchTarget", got, want)
	// A session that ends after a newer one began reports an older time:
	// last seen stays the newer.
	must(t, s.TouchTarget(f.ctx, id, at(15*time.Minute)))
	got, err = s.GetTarget(f.ctx, id)
	must(t, err)
	wantEqual(t, "target after an older TouchTarget", got, want)
	wantErr(t, s.TouchTarget(f.ctx, "tgt-nope", at(0)), store.ErrNotFound, `"tgt-nope"`)
}
