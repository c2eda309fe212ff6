package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/server/store"
)

// This file holds target lookup by name, revocation of targets and join
// tokens, and target alerts.

var revokeTests = []namedTest{
	{"GetTargetByName", testGetTargetByName},
	{"RevokeTarget", testRevokeTarget},
	{"RevokedTargetListed", testRevokedTargetListed},
	{"RaiseTargetAlert", testRaiseTargetAlert},
	{"RevokeJoinToken", testRevokeJoinToken},
	{"EnrollTargetRevokedToken", testEnrollTargetRevokedToken},
	{"RotateTargetCertificate", testRotateTargetCertificate},
}

func testRotateTargetCertificate(t *testing.T, s store.Store) {
	f := newFixture(t, s, 1)
	old := f.targets[0]
	got, err := s.RotateTargetCertificate(f.ctx, old.ID, old.CertFingerprint, "new-fp", "sha256:next", at(48*time.Hour))
	must(t, err)
	if got.CertFingerprint != "new-fp" || got.PrevCertFingerprint != old.CertFingerprint || got.CertCAHash != "sha256:next" || !got.CertNotAfter.Equal(at(48*time.Hour)) {
		t.Fatalf("after rotation: %+v", got)
	}
	// A second renewal made with the old certificate (the agent never saved
	// the new one) keeps the old one as previous.
	got, err = s.RotateTargetCertificate(f.ctx, old.ID, old.CertFingerprint, "newer-fp", "sha256:next", at(49*time.Hour))
	must(t, err)
	if got.CertFingerprint != "newer-fp" || got.PrevCertFingerprint != old.CertFingerprint {
		t.Fatalf("after a renewal from the old certificate: %+v", got)
	}
	must(t, s.ConfirmTargetCertificate(f.ctx, old.ID))
	got, err = s.GetTarget(f.ctx, old.ID)
	must(t, err)
	if got.PrevCertFingerprint != "" || got.CertFingerprint != "newer-fp" {
		t.Fatalf("after confirm: %+v", got)
	}
	_, err = s.RotateTargetCertificate(f.ctx, "nope", "a", "b", "c", at(0))
	wantErr(t, err, store.ErrNotFound, `"nope"`)
	wantErr(t, s.ConfirmTargetCertificate(f.ctx, "nope"), store.ErrNotFound, `"nope"`)
}

func testGetTargetByName(t *testing.T, s store.Store) {
	f := newFixture(t, s, 2)
	got, err := s.GetTargetByName(f.ctx, "host-01")
	must(t, err)
	wantEqual(t, "target host-01", got, f.targets[1])
	_, err = s.GetTargetByName(f.ctx, "nope")
	wantErr(t, err, store.ErrNotFound, `"nope"`)
	_, err = s.GetTargetByName(f.ctx, f.targets[0].ID) // an ID is not a name
	wantErr(t, err, store.ErrNotFound, f.targets[0].ID)

	revoked, err := s.RevokeTarget(f.ctx, f.targets[0].ID, at(time.Hour))
	must(t, err)
	got, err = s.GetTargetByName(f.ctx, "host-00")
	must(t, err)
	wantEqual(t, "revoked target by name", got, revoked)
}

func testRevokeTarget(t *testing.T, s store.Store) {
	f := newFixture(t, s, 2)
	id := f.targets[0].ID
	want := f.targets[0]
	want.RevokedAt = at(time.Hour)
	got, err := s.RevokeTarget(f.ctx, id, at(time.Hour))
	must(t, err)
	wantEqual(t, "revoked target", got, want)
	stored, err := s.GetTarget(f.ctx, id)
	must(t, err)
	wantEqual(t, "stored revoked target", stored, want)

	t.Run("again keeps the first time", func(t *testing.T) {
		got, err := s.RevokeTarget(f.ctx, id, at(2*time.Hour))
		must(t, err)
		wantEqual(t, "target revoked twice", got, want)
		stored, err := s.GetTarget(f.ctx, id)
		must(t, err)
		wantEqual(t, "stored target revoked twice", stored, want)
	})
	t.Run("unknown", func(t *testing.T) {
		_, err := s.RevokeTarget(f.ctx, "tgt-nope", at(time.Hour))
		wantErr(t, err, store.ErrNotFound, `"tgt-nope"`)
	})
	other, err := s.GetTarget(f.ctx, f.targets[1].ID)
	must(t, err)
	wantEqual(t, "the other target", other, f.targets[1])
}

// testRevokedTargetListed: a revoked target stays in ListTargets and leaves
// ListTargetsInEnvironment; an alert alone does not remove it.
func testRevokedTargetListed(t *testing.T, s store.Store) {
	f := newFixture(t, s, 3)
	revoked, err := s.RevokeTarget(f.ctx, f.targets[1].ID, at(time.Hour))
	must(t, err)
	must(t, s.RaiseTargetAlert(f.ctx, f.targets[2].ID, "certificate used from two addresses", at(time.Hour)))
	alerted, err := s.GetTarget(f.ctx, f.targets[2].ID)
	must(t, err)

	all, err := s.ListTargets(f.ctx)
	must(t, err)
	wantEqual(t, "all targets", all, []store.Target{f.targets[0], revoked, alerted})
	prod, err := s.ListTargetsInEnvironment(f.ctx, "prod")
	must(t, err)
	wantEqual(t, "prod targets", prod, []store.Target{f.targets[0], alerted})

	for _, tg := range f.targets {
		_, err := s.RevokeTarget(f.ctx, tg.ID, at(2*time.Hour))
		must(t, err)
	}
	prod, err = s.ListTargetsInEnvironment(f.ctx, "prod")
	must(t, err)
	wantEqual(t, "prod targets when all are revoked", len(prod), 0)
	all, err = s.ListTargets(f.ctx)
	must(t, err)
	wantEqual(t, "revocation times", ids(all, func(t store.Target) string { return t.RevokedAt.Format(time.RFC3339) }),
		[]string{at(2 * time.Hour).Format(time.RFC3339), at(time.Hour).Format(time.RFC3339), at(2 * time.Hour).Format(time.RFC3339)})
}

func testRaiseTargetAlert(t *testing.T, s store.Store) {
	f := newFixture(t, s, 2)
	id := f.targets[0].ID
	must(t, s.RaiseTargetAlert(f.ctx, id, "certificate used from two addresses", at(time.Hour)))
	want := f.targets[0]
	want.Alert, want.AlertAt = "certificate used from two addresses", at(time.Hour)
	got, err := s.GetTarget(f.ctx, id)
	must(t, err)
	wantEqual(t, "target with an alert", got, want)

	t.Run("a later alert replaces it", func(t *testing.T) {
		must(t, s.RaiseTargetAlert(f.ctx, id, "unexpected agent instance", at(2*time.Hour)))
		want.Alert, want.AlertAt = "unexpected agent instance", at(2*time.Hour)
		got, err := s.GetTarget(f.ctx, id)
		must(t, err)
		wantEqual(t, "target with a second alert", got, want)
	})
	t.Run("unknown", func(t *testing.T) {
		wantErr(t, s.RaiseTargetAlert(f.ctx, "tgt-nope", "x", at(time.Hour)), store.ErrNotFound, `"tgt-nope"`)
	})
	other, err := s.GetTarget(f.ctx, f.targets[1].ID)
	must(t, err)
	wantEqual(t, "the other target", other, f.targets[1])
}

func testRevokeJoinToken(t *testing.T, s store.Store) {
	f := newFixture(t, s, 0)
	tok, other := joinToken("tok-1", "prod", 3), joinToken("tok-2", "prod", 3)
	must(t, s.CreateJoinToken(f.ctx, tok))
	must(t, s.CreateJoinToken(f.ctx, other))
	want := tok
	want.RevokedAt = at(10 * time.Minute)
	got, err := s.RevokeJoinToken(f.ctx, "tok-1", at(10*time.Minute))
	must(t, err)
	wantEqual(t, "revoked join token", got, want)

	got, err = s.RevokeJoinToken(f.ctx, "tok-1", at(20*time.Minute))
	must(t, err)
	wantEqual(t, "join token revoked twice", got, want)
	ts, err := s.ListJoinTokens(f.ctx)
	must(t, err)
	wantEqual(t, "join tokens", ts, []store.JoinToken{want, other})

	_, err = s.RevokeJoinToken(f.ctx, "tok-nope", at(time.Minute))
	wantErr(t, err, store.ErrNotFound, `"tok-nope"`)
}

func testEnrollTargetRevokedToken(t *testing.T, s store.Store) {
	f := newFixture(t, s, 0)
	must(t, s.CreateJoinToken(f.ctx, joinToken("tok-1", "prod", 5)))
	before, err := s.EnrollTarget(f.ctx, "tok-1", hash("secret-tok-1"), at(time.Minute), store.Target{ID: "before", Name: "before"})
	must(t, err)
	_, err = s.RevokeJoinToken(f.ctx, "tok-1", at(2*time.Minute))
	must(t, err)
	tokens, err := s.ListJoinTokens(f.ctx)
	must(t, err)

	_, err = s.EnrollTarget(f.ctx, "tok-1", hash("secret-tok-1"), at(3*time.Minute), store.Target{ID: "after", Name: "after"})
	wantErr(t, err, store.ErrTokenInvalid, `"tok-1"`, "revoked")

	t.Run("wrong secret reads as unknown", func(t *testing.T) {
		// Revocation is the token's state: only the secret's holder learns it.
		_, errWrong := s.EnrollTarget(f.ctx, "tok-1", hash("guess"), at(3*time.Minute), store.Target{ID: "t", Name: "t"})
		_, errUnknown := s.EnrollTarget(f.ctx, "tok-nope", hash("guess"), at(3*time.Minute), store.Target{ID: "t", Name: "t"})
		wantErr(t, errWrong, store.ErrTokenInvalid, "unknown")
		if strings.Contains(errWrong.Error(), "revoked") {
			t.Errorf("wrong secret on a revoked token says %q", errWrong)
		}
		wrong := strings.ReplaceAll(errWrong.Error(), "tok-1", "X")
		unknown := strings.ReplaceAll(errUnknown.Error(), "tok-nope", "X")
		if wrong != unknown {
			t.Errorf("wrong secret says %q, unknown token says %q", errWrong, errUnknown)
		}
	})

	after, err := s.ListJoinTokens(f.ctx)
	must(t, err)
	wantEqual(t, "join tokens (no use consumed)", after, tokens)
	ts, err := s.ListTargets(f.ctx)
	must(t, err)
	wantEqual(t, "targets: the one enrolled before the revocation stays", ts, []store.Target{before})
	ts, err = s.ListTargetsInEnvironment(f.ctx, "prod")
	must(t, err)
	wantEqual(t, "prod targets", ts, []store.Target{before})
}
