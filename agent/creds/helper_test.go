package creds

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// helperScript answers like a docker-credential helper, per server address.
const helperScript = `#!/bin/sh
[ "$1" = get ] || { echo "unexpected args: $*" >&2; exit 3; }
server=$(cat)
echo "$server" >> "$(dirname "$0")/asked"
case "$server" in
  ok.example.com|https://ok.example.com) echo '{"ServerURL":"ok.example.com","Username":"NAME-user","Secret":"NAME-pw"}' ;;
  https://index.docker.io/v1/) echo '{"ServerURL":"https://index.docker.io/v1/","Username":"NAME-hub","Secret":"hubpw"}' ;;
  token.example.com) echo '{"ServerURL":"token.example.com","Username":"<token>","Secret":"tok"}' ;;
  missing.example.com) echo 'credentials not found in native keychain'; exit 1 ;;
  empty.example.com) echo '{"ServerURL":"empty.example.com","Username":"","Secret":""}' ;;
  broken.example.com) echo 'keychain is locked'; exit 1 ;;
  crash.example.com) echo 'panic: boom' >&2; exit 2 ;;
  garbage.example.com) echo 'not json' ;;
  slow.example.com) sleep 5 ;;
  *) echo 'credentials not found in native keychain'; exit 1 ;;
esac
`

// installHelpers puts docker-credential-<name> scripts in a temp dir and
// makes it the whole PATH, so no real helper on the machine can answer.
func installHelpers(t *testing.T, names ...string) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the test helpers are shell scripts")
	}
	dir := t.TempDir()
	for _, n := range names {
		script := strings.ReplaceAll(helperScript, "NAME", n)
		if err := os.WriteFile(filepath.Join(dir, "docker-credential-"+n), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+"/usr/bin"+string(os.PathListSeparator)+"/bin")
	return dir
}

// Not parallel: the helpers are found through PATH, which t.Setenv changes.
func TestLookupCredentialHelpers(t *testing.T) {
	dir := installHelpers(t, "pass", "desktop")
	s := storeWithDockerConfig(t, `{
		"auths": {"ok.example.com": {}, "https://index.docker.io/v1/": {}},
		"credHelpers": {
			"ok.example.com": "pass",
			"https://token.example.com": "pass",
			"missing.example.com": "pass",
			"empty.example.com": "pass",
			"broken.example.com": "pass",
			"crash.example.com": "pass",
			"garbage.example.com": "pass",
			"slow.example.com": "pass",
			"gone.example.com": "notinstalled",
			"evil.example.com": "../../bin/sh"
		},
		"credsStore": "desktop"
	}`)
	s.helperTimeout = 500 * time.Millisecond
	tests := []struct {
		host    string
		want    Auth
		wantOK  bool
		wantErr string
	}{
		// An empty auths entry (left by docker login) defers to the helper.
		{host: "ok.example.com", want: Auth{Username: "pass-user", Password: "pass-pw"}, wantOK: true},
		{host: "token.example.com", want: Auth{IdentityToken: "tok"}, wantOK: true},
		{host: "missing.example.com", wantOK: false},
		{host: "empty.example.com", wantOK: false},
		// No credHelpers entry: the credsStore answers, Hub under its index URL.
		{host: "docker.io", want: Auth{Username: "desktop-hub", Password: "hubpw"}, wantOK: true},
		{host: "other.example.com", wantOK: false},
		{host: "broken.example.com", wantErr: "credential helper docker-credential-pass get broken.example.com: exit status 1: keychain is locked"},
		{host: "crash.example.com", wantErr: "credential helper docker-credential-pass get crash.example.com: exit status 2: panic: boom"},
		{host: "garbage.example.com", wantErr: "credential helper docker-credential-pass get garbage.example.com: answer is not the helper protocol's JSON"},
		{host: "slow.example.com", wantErr: "credential helper docker-credential-pass for slow.example.com did not answer within 500ms"},
		{host: "gone.example.com", wantErr: "credential helper docker-credential-notinstalled for gone.example.com is not installed (not found on PATH): install it or remove it from docker's config.json"},
		{host: "evil.example.com", wantErr: `docker config: credential helper name "../../bin/sh" is invalid: give the suffix of a docker-credential-* program on PATH`},
	}
	for _, tt := range tests {
		start := time.Now()
		got, ok, err := s.Lookup(tt.host)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("Lookup(%q) error = %v, want %q", tt.host, err, tt.wantErr)
			}
		} else if err != nil || ok != tt.wantOK || got != tt.want {
			t.Errorf("Lookup(%q) = %v, %v, %v; want %v, %v", tt.host, got, ok, err, tt.want, tt.wantOK)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Lookup(%q) took %s: the helper timeout did not hold", tt.host, d)
		}
	}

	asked, err := os.ReadFile(filepath.Join(dir, "asked"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(asked), "https://index.docker.io/v1/\n") {
		t.Errorf("helpers were asked for %q; want Docker Hub asked as https://index.docker.io/v1/", asked)
	}
}

func TestAgentEntryWinsOverHelper(t *testing.T) {
	dir := installHelpers(t, "pass")
	p := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(p, []byte(`{"credsStore":"pass"}`), 0o600)
	s, err := New([]Entry{{Registry: "ok.example.com", Username: "agent", Password: "agentpw"}}, p)
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Lookup("ok.example.com")
	if err != nil || !ok || got != (Auth{Username: "agent", Password: "agentpw"}) {
		t.Errorf("Lookup = %v, %v, %v; want the agent's entry", got, ok, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "asked")); err == nil {
		t.Errorf("the credential helper ran although the agent has an entry")
	}
}
