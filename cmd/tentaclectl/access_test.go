package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// The CLI's clock is t0 plus a minute; see harness.run.
var cliNow = t0.Add(time.Minute)

func TestTargetsRevokedAndAlerts(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{targets: []*tentaclev1.Target{
		{Name: "web-1", Environment: "prod", Connected: true, LastSeenAt: timestamppb.New(t0),
			Alert: "certificate presented from 10.0.0.9:5000 while connected from 10.0.0.5:4000: cloned host or stolen key", AlertAt: timestamppb.New(t0)},
		{Name: "web-2", Environment: "prod", LastSeenAt: timestamppb.New(t0), RevokedAt: timestamppb.New(t0),
			Alert: "cloned\nhost", AlertAt: timestamppb.New(t0.Add(-time.Hour))},
	}})
	r := h.run(t, "targets")
	wantCode(t, r, 0)
	wantOutput(t, r.stdout, ""+
		"NAME   ENVIRONMENT  ROLES  STATE      LAST SEEN  AGENT  DOCKER  OS/ARCH  CERT EXPIRES\n"+
		"web-1  prod         -      connected  1m ago     -      -       -        -\n"+
		"web-2  prod         -      revoked    1m ago     -      -       -        -\n"+
		"\n"+
		"alert on web-1 at 2026-01-02 03:04:05: certificate presented from 10.0.0.9:5000 while connected from 10.0.0.5:4000: cloned host or stolen key\n"+
		"alert on web-2 at 2026-01-02 02:04:05: cloned host\n"+
		"hint: if a target's certificate may have been copied, revoke it: tentaclectl target revoke NAME\n")

	// Only revoked targets have alerts: no hint to revoke them.
	h = newHarness(t, &fakeAdmin{targets: []*tentaclev1.Target{{Name: "web-2", RevokedAt: timestamppb.New(t0), Alert: "cloned", AlertAt: timestamppb.New(t0)}}})
	r = h.run(t, "targets")
	wantCode(t, r, 0)
	if !strings.HasSuffix(r.stdout, "\n\nalert on web-2 at 2026-01-02 03:04:05: cloned\n") {
		t.Errorf("stdout:\n%s", r.stdout)
	}

	// JSON has the fields and nothing after the document.
	h = newHarness(t, &fakeAdmin{targets: []*tentaclev1.Target{{Name: "web-2", RevokedAt: timestamppb.New(t0), Alert: "cloned", AlertAt: timestamppb.New(t0)}}})
	r = h.run(t, "targets", "-o", "json")
	wantCode(t, r, 0)
	var got struct {
		Targets []struct{ Name, RevokedAt, Alert, AlertAt string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, r.stdout)
	}
	if len(got.Targets) != 1 || got.Targets[0].RevokedAt != "2026-01-02T03:04:05Z" || got.Targets[0].Alert != "cloned" || got.Targets[0].AlertAt != "2026-01-02T03:04:05Z" {
		t.Errorf("json = %+v", got)
	}
}

func TestTargetRevoke(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	r := h.run(t, "target", "revoke", "web-1")
	wantCode(t, r, 0)
	wantRequest(t, h.fake, &tentaclev1.RevokeTargetRequest{Target: "web-1"})
	wantOutput(t, r.stdout, ""+
		"revoked target web-1 (id tgt-1, environment prod) at 2026-01-02 03:04:05\n"+
		"Its session is closed and its certificate is refused from now on. To bring the\n"+
		"host back, create a new join token (tentaclectl token create --env prod) and\n"+
		"run tentacle enroll --force with it on the host.\n")

	h = newHarness(t, &fakeAdmin{})
	r = h.run(t, "target", "revoke", "tgt-1", "-o", "json")
	wantCode(t, r, 0)
	wantRequest(t, h.fake, &tentaclev1.RevokeTargetRequest{Target: "tgt-1"})
	var got struct {
		Target struct{ ID, Name, RevokedAt string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Target.ID != "tgt-1" || got.Target.RevokedAt != "2026-01-02T03:04:05Z" {
		t.Errorf("json = %+v (%v):\n%s", got, err, r.stdout)
	}
}

func TestTokenList(t *testing.T) {
	t.Parallel()
	ts := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(cliNow.Add(d)) }
	tokens := []*tentaclev1.JoinTokenInfo{
		{Id: "aaaaaa", Environment: "prod", Roles: []string{"web", "edge"}, UsesAllowed: 3, UsesCount: 1, ExpiresAt: ts(time.Hour), CreatedBy: "alice"},
		{Id: "bbbbbb", Environment: "test", UsesAllowed: 1, ExpiresAt: ts(0), CreatedBy: "alice"},
		{Id: "cccccc", Environment: "test", UsesAllowed: 2, UsesCount: 2, ExpiresAt: ts(-time.Hour), CreatedBy: "bob"},
		{Id: "dddddd", Environment: "prod", UsesAllowed: 1, ExpiresAt: ts(time.Hour), CreatedBy: "bob", RevokedAt: ts(-time.Second)},
	}
	for _, args := range [][]string{{"token", "list"}, {"token", "ls"}} {
		h := newHarness(t, &fakeAdmin{joinTokens: tokens})
		r := h.run(t, args...)
		wantCode(t, r, 0)
		wantRequest(t, h.fake, &tentaclev1.ListJoinTokensRequest{})
		wantOutput(t, r.stdout, ""+
			"ID      ENVIRONMENT  ROLES     USES  EXPIRES              CREATED BY  STATE\n"+
			"aaaaaa  prod         web,edge  1/3   2026-01-02 04:05:05  alice       active\n"+
			"bbbbbb  test         -         0/1   2026-01-02 03:05:05  alice       expired\n"+
			"cccccc  test         -         2/2   2026-01-02 02:05:05  bob         used up\n"+
			"dddddd  prod         -         0/1   2026-01-02 04:05:05  bob         revoked\n")
	}

	h := newHarness(t, &fakeAdmin{joinTokens: tokens[:1]})
	r := h.run(t, "token", "list", "-o", "json")
	wantCode(t, r, 0)
	var got struct {
		Tokens []struct {
			ID                     string
			UsesAllowed, UsesCount int
			RevokedAt              *string
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, r.stdout)
	}
	if len(got.Tokens) != 1 || got.Tokens[0].ID != "aaaaaa" || got.Tokens[0].UsesAllowed != 3 || got.Tokens[0].UsesCount != 1 || got.Tokens[0].RevokedAt != nil {
		t.Errorf("json = %+v", got)
	}
}

func TestTokenRevoke(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	r := h.run(t, "token", "revoke", "k3x7qa")
	wantCode(t, r, 0)
	wantRequest(t, h.fake, &tentaclev1.RevokeJoinTokenRequest{Id: "k3x7qa"})
	wantOutput(t, r.stdout, ""+
		"revoked join token k3x7qa (environment prod, 2/3 uses) at 2026-01-02 03:04:05: it enrolls no more targets\n"+
		"Targets it enrolled stay enrolled; revoke one with tentaclectl target revoke NAME.\n")

	// A whole token is revoked by the id in it; the secret is not sent.
	secret := strings.Repeat("s", 26)
	h = newHarness(t, &fakeAdmin{})
	r = h.run(t, "token", "revoke", "TNT1.k3x7qa."+secret+"."+strings.Repeat("0f", 32)+"\n", "-o", "json")
	wantCode(t, r, 0)
	wantRequest(t, h.fake, &tentaclev1.RevokeJoinTokenRequest{Id: "k3x7qa"})
	var got struct {
		Token struct{ ID, RevokedAt string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Token.ID != "k3x7qa" || got.Token.RevokedAt != "2026-01-02T03:04:05Z" {
		t.Errorf("json = %+v (%v):\n%s", got, err, r.stdout)
	}
}

const fakeAdminToken = "tntadm_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func TestAdminTokenCreate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	r := h.run(t, "admin-token", "create", "--name", "ci", "--role", "deployer", "--ttl", "720h")
	wantCode(t, r, 0)
	wantRequest(t, h.fake, &tentaclev1.CreateAdminTokenRequest{Name: "ci", Role: "deployer", Ttl: durationpb.New(720 * time.Hour)})
	wantOutput(t, r.stdout, ""+
		fakeAdminToken+"\n"+
		"\n"+
		"Name:     ci\n"+
		"ID:       adm-1\n"+
		"Role:     deployer\n"+
		"Expires:  2026-02-01 03:05:05 (in 720h0m0s)\n"+
		"\n"+
		"This is the only time the token is shown: store it now. To use it:\n"+
		"  export TENTACLE_TOKEN="+fakeAdminToken+"\n")

	// Without --ttl no ttl is sent: the token does not expire.
	h = newHarness(t, &fakeAdmin{})
	r = h.run(t, "admin-token", "create", "--name", "alice", "--role", "admin")
	wantCode(t, r, 0)
	wantRequest(t, h.fake, &tentaclev1.CreateAdminTokenRequest{Name: "alice", Role: "admin"})
	if !strings.Contains(r.stdout, "\nExpires:  never\n") {
		t.Errorf("stdout:\n%s", r.stdout)
	}

	// JSON alone on stdout; the warning on stderr.
	h = newHarness(t, &fakeAdmin{})
	r = h.run(t, "admin-token", "create", "--name", "ci", "--role", "viewer", "-o", "json")
	wantCode(t, r, 0)
	var got struct {
		Token string
		Info  struct{ ID, Name, Role string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Token != fakeAdminToken || got.Info.ID != "adm-1" || got.Info.Role != "viewer" {
		t.Errorf("json = %+v (%v):\n%s", got, err, r.stdout)
	}
	if want := "tentaclectl: warning: the token is shown only this once: store it now\n"; r.stderr != want {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
}

func TestAdminTokenList(t *testing.T) {
	t.Parallel()
	tokens := []*tentaclev1.AdminTokenInfo{
		{Id: "adm-0", Name: "bootstrap", Role: "admin", CreatedAt: timestamppb.New(t0)},
		{Id: "adm-1", Name: "ci", Role: "deployer", CreatedAt: timestamppb.New(t0), CreatedBy: "bootstrap", ExpiresAt: timestamppb.New(cliNow.Add(time.Hour))},
		{Id: "adm-2", Name: "old", Role: "viewer", CreatedAt: timestamppb.New(t0), CreatedBy: "bootstrap", ExpiresAt: timestamppb.New(t0)},
		{Id: "adm-3", Name: "bob", Role: "admin", CreatedAt: timestamppb.New(t0), CreatedBy: "bootstrap", RevokedAt: timestamppb.New(t0)},
	}
	h := newHarness(t, &fakeAdmin{adminTokens: tokens})
	r := h.run(t, "admin-token", "list")
	wantCode(t, r, 0)
	wantRequest(t, h.fake, &tentaclev1.ListAdminTokensRequest{})
	wantOutput(t, r.stdout, ""+
		"ID     NAME       ROLE      CREATED              CREATED BY  EXPIRES              STATE\n"+
		"adm-0  bootstrap  admin     2026-01-02 03:04:05  -           never                active\n"+
		"adm-1  ci         deployer  2026-01-02 03:04:05  bootstrap   2026-01-02 04:05:05  active\n"+
		"adm-2  old        viewer    2026-01-02 03:04:05  bootstrap   2026-01-02 03:04:05  expired\n"+
		"adm-3  bob        admin     2026-01-02 03:04:05  bootstrap   never                revoked\n")

	h = newHarness(t, &fakeAdmin{adminTokens: tokens})
	r = h.run(t, "admin-token", "ls", "-o", "json")
	wantCode(t, r, 0)
	var got struct {
		Tokens []struct{ ID, Name, Role, RevokedAt string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, r.stdout)
	}
	if len(got.Tokens) != 4 || got.Tokens[3].Name != "bob" || got.Tokens[3].RevokedAt != "2026-01-02T03:04:05Z" {
		t.Errorf("json = %+v", got)
	}
	if strings.Contains(r.stdout, `"token"`) {
		t.Errorf("json has a token field:\n%s", r.stdout)
	}
}

func TestAdminTokenRevoke(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	r := h.run(t, "admin-token", "revoke", "ci")
	wantCode(t, r, 0)
	wantRequest(t, h.fake, &tentaclev1.RevokeAdminTokenRequest{Token: "ci"})
	wantOutput(t, r.stdout, "revoked admin token ci (id adm-2, role deployer) at 2026-01-02 03:04:05: the server refuses it from now on\n")

	h = newHarness(t, &fakeAdmin{})
	r = h.run(t, "admin-token", "revoke", "adm-2", "-o", "json")
	wantCode(t, r, 0)
	wantRequest(t, h.fake, &tentaclev1.RevokeAdminTokenRequest{Token: "adm-2"})
	var got struct {
		Info struct{ ID, RevokedAt string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Info.ID != "adm-2" || got.Info.RevokedAt != "2026-01-02T03:04:05Z" {
		t.Errorf("json = %+v (%v):\n%s", got, err, r.stdout)
	}
}

var auditRecords = []*tentaclev1.AuditRecord{
	{Id: 1, At: timestamppb.New(t0), Actor: "admin-token:alice", Action: "CreateDeployment", Object: "deployment/dep-1", Peer: "10.0.0.5:4000", Outcome: "ok"},
	{Id: 2, At: timestamppb.New(t0.Add(time.Second)), Actor: "admin-token:ci", Action: "RevokeTarget", Object: "target/web-1", Peer: "10.0.0.6:4001",
		Outcome: "denied: role deployer may not call RevokeTarget: it needs role admin"},
	{Id: 3, At: timestamppb.New(t0.Add(2 * time.Second)), Actor: "server", Action: "target.cloned_certificate"},
}

func TestAudit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{audit: auditRecords})
	r := h.run(t, "audit")
	wantCode(t, r, 0)
	wantRequest(t, h.fake, &tentaclev1.ListAuditRecordsRequest{Limit: 100})
	wantOutput(t, r.stdout, ""+
		"TIME                 ACTOR              ACTION                     OBJECT            PEER           OUTCOME\n"+
		"2026-01-02 03:04:05  admin-token:alice  CreateDeployment           deployment/dep-1  10.0.0.5:4000  ok\n"+
		"2026-01-02 03:04:06  admin-token:ci     RevokeTarget               target/web-1      10.0.0.6:4001  denied: role deployer may not call RevokeTarget: it needs role admin\n"+
		"2026-01-02 03:04:07  server             target.cloned_certificate  -                 -              -\n")
	if r.stderr != "" {
		t.Errorf("stderr = %q", r.stderr)
	}

	// --since: a duration counts back from now; a time is taken as is.
	for since, want := range map[string]time.Time{
		"24h":                       cliNow.Add(-24 * time.Hour),
		"90m":                       cliNow.Add(-90 * time.Minute),
		"2026-11-26T10:00:00Z":      time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC),
		"2026-11-26T11:00:00+01:00": time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC),
		"2026-11-26T10:00:00.5Z":    time.Date(2026, 11, 26, 10, 0, 0, 5e8, time.UTC),
	} {
		h := newHarness(t, &fakeAdmin{})
		r := h.run(t, "audit", "--since", since, "--limit", "7")
		wantCode(t, r, 0)
		wantRequest(t, h.fake, &tentaclev1.ListAuditRecordsRequest{Since: timestamppb.New(want), Limit: 7})
	}

	h = newHarness(t, &fakeAdmin{audit: auditRecords})
	r = h.run(t, "audit", "--since", "24h", "-o", "json")
	wantCode(t, r, 0)
	var got struct {
		Records []struct{ ID, At, Actor, Action, Object, Peer, Outcome string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, r.stdout)
	}
	if len(got.Records) != 3 || got.Records[1].ID != "2" || got.Records[1].At != "2026-01-02T03:04:06Z" || got.Records[1].Actor != "admin-token:ci" || got.Records[2].Peer != "" {
		t.Errorf("json = %+v", got)
	}
}

// A full page says that older records may have been left out, on stderr.
func TestAuditLimitReached(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{audit: auditRecords[:2]})
	r := h.run(t, "audit", "--limit", "2")
	wantCode(t, r, 0)
	if want := "tentaclectl: showing the newest 2 records; there may be older ones (raise --limit)\n"; r.stderr != want {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
	if n := strings.Count(r.stdout, "\n"); n != 3 {
		t.Errorf("stdout has %d lines, want 3:\n%s", n, r.stdout)
	}

	r = h.run(t, "audit", "--limit", "2", "-o", "json")
	wantCode(t, r, 0)
	if r.stderr != "" {
		t.Errorf("json: stderr = %q", r.stderr)
	}
}

// Bad values for the new commands are rejected before any call, with an
// error naming the flag or argument.
func TestAccessBadInput(t *testing.T) {
	t.Parallel()
	create := []string{"admin-token", "create", "--name", "ci"}
	tests := []struct {
		args []string
		want string
	}{
		{append(create, "--role", "root"), `--role "root": use viewer, deployer or admin`},
		{append(create, "--role", "Admin"), `--role "Admin": use viewer, deployer or admin`},
		{append(create, "--role", "admin", "--ttl", "0s"), `--ttl 0s: must be positive (leave it out for a token that does not expire)`},
		{append(create, "--role", "admin", "--ttl", "-1h"), `--ttl -1h0m0s: must be positive (leave it out for a token that does not expire)`},
		{[]string{"admin-token", "create", "--name", "CI bot", "--role", "viewer"}, `--name: invalid name "CI bot": use 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit`},
		{[]string{"admin-token", "revoke", fakeAdminToken}, `that is an admin token itself, not its id or name: find its id with tentaclectl admin-token list`},
		{[]string{"admin-token", "revoke", " "}, `empty ID|NAME: give the token's id or name (see tentaclectl admin-token list)`},
		{[]string{"token", "revoke", ""}, `empty ID: give the token's id (see tentaclectl token list)`},
		{[]string{"token", "revoke", "TNT1.k3x7qa.short.abc"}, `join token: secret is 5 characters, want 26`},
		{[]string{"target", "revoke", ""}, `empty target: give its name or id (see tentaclectl targets)`},
		{[]string{"audit", "--since", "yesterday"}, `--since "yesterday": use a duration such as 30m or 24h (that long ago) or an RFC 3339 time such as 2026-11-26T10:00:00Z`},
		{[]string{"audit", "--since", "7d"}, `--since "7d": use a duration such as 30m or 24h (that long ago) or an RFC 3339 time such as 2026-11-26T10:00:00Z`},
		{[]string{"audit", "--since", "-1h"}, `--since "-1h": use a duration such as 30m or 24h (that long ago) or an RFC 3339 time such as 2026-11-26T10:00:00Z`},
		{[]string{"audit", "--since", "2026-11-26"}, `--since "2026-11-26": use a duration such as 30m or 24h (that long ago) or an RFC 3339 time such as 2026-11-26T10:00:00Z`},
		{[]string{"audit", "--since", "2026-11-26T10:00:00"}, `--since "2026-11-26T10:00:00": an RFC 3339 time needs its zone, e.g. 2026-11-26T10:00:00Z for UTC or 2026-11-26T10:00:00+01:00 (or use a duration such as 24h)`},
		{[]string{"audit", "--limit", "0"}, `--limit 0: must be at least 1`},
	}
	h := newHarness(t, &fakeAdmin{})
	for _, tt := range tests {
		r := h.run(t, tt.args...)
		if r.code != 2 {
			t.Errorf("%q: exit code %d, want 2", tt.args, r.code)
		}
		first, rest, _ := strings.Cut(r.stderr, "\n")
		if want := "tentaclectl: " + tt.want; first != want {
			t.Errorf("%q: stderr\n got: %s\nwant: %s", tt.args, first, want)
		}
		if !strings.HasPrefix(rest, "See 'tentaclectl "+tt.args[0]) || !strings.HasSuffix(rest, " --help'.\n") {
			t.Errorf("%q: no pointer to help after the error:\n%s", tt.args, r.stderr)
		}
		if strings.Contains(r.stderr, "aaaaaaaaaaaa") || strings.Contains(r.stderr, "short") {
			t.Errorf("%q: stderr echoes a secret:\n%s", tt.args, r.stderr)
		}
	}
	if n := h.fake.count(); n != 0 {
		t.Errorf("server got %d requests for bad input", n)
	}
}

func TestAccessUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []refusal{
		{[]string{"admin-token", "create", "--name", "ci"}, `required flag(s) "role" not set`},
		{[]string{"admin-token", "create"}, `required flag(s) "name", "role" not set`},
		{[]string{"admin-token", "revoke"}, "missing ID|NAME"},
		{[]string{"token", "revoke"}, "missing ID"},
		{[]string{"target", "revoke"}, "missing NAME|ID"},
		{[]string{"target", "revoke", "a", "b"}, `unexpected argument "b"`},
		{[]string{"target", "list"}, `unknown command "list" for "tentaclectl target"`},
		{[]string{"audit", "--limit", "many"}, `invalid argument "many" for "--limit" flag: strconv.ParseInt: parsing "many": invalid syntax`},
		{[]string{"audti"}, `unknown command "audti" for "tentaclectl"; did you mean audit?`},
	}
	h := newHarness(t, &fakeAdmin{})
	wantRefusals(t, h, tests, "Usage:")
	if n := h.fake.count(); n != 0 {
		t.Errorf("server got %d requests for usage errors", n)
	}
}

// The access commands have their own group in the help.
func TestHelpGroups(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	r := h.run(t, "--help")
	wantCode(t, r, 0)
	want := "" +
		"Targets:\n" +
		"  targets     List targets: the hosts running the agent\n" +
		"\n" +
		"Access:\n" +
		"  admin-token Create, list and revoke admin API tokens\n" +
		"  audit       Show the audit log: who did what, from where, and how it ended\n" +
		"  target      Show or revoke a target (tentaclectl targets lists them)\n" +
		"  token       Create, list and revoke join tokens that enroll targets\n"
	if !strings.Contains(r.stdout, want) {
		t.Errorf("help lacks\n%s\ngot:\n%s", want, r.stdout)
	}
}
