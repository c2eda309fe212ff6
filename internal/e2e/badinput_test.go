package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadInputThroughTheBinaries checks what a user sees for each kind of
// bad input: a clear error naming the field, a non-zero exit, and nothing
// half-written in the store.
func TestBadInputThroughTheBinaries(t *testing.T) {
	s := startSystem(t)
	s.ok("env", "create", "prod")
	s.ok("app", "create", "web", "--image", "registry.example.com:5000/team/web")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"env", "create", "Prod Env"}, `name: invalid name "Prod Env"`},
		{[]string{"app", "create", "api", "--image", "team/api:1.0"}, `image repository "team/api:1.0" contains a tag: give the tag to the release instead`},
		{[]string{"app", "create", "api", "--image", "team/api", "--port", "80:99999"}, `--port "80:99999": container port 99999 out of range 1-65535`},
		{[]string{"app", "create", "api", "--image", "team/api", "--env", "1BAD=x"}, `--env "1BAD=x": invalid variable name "1BAD"`},
		{[]string{"release", "create", "--app", "nope", "--tag", "1.0"}, `application "nope": not found`},
		{[]string{"release", "create", "--app", "web", "--tag", "bad tag"}, `image tag "bad tag" is invalid`},
		{[]string{"deploy", "--app", "web", "--release", "9.9", "--env", "prod"}, `release "9.9" of "web": not found`},
		{[]string{"token", "create", "--env", "staging"}, `environment "staging": not found`},
	} {
		_, errOut, code := s.ctl(tc.args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("tentaclectl %s: exit %d, stderr %q; want non-zero and %q", strings.Join(tc.args, " "), code, errOut, tc.want)
		}
	}
	var apps struct{ Applications []struct{ Name string } }
	s.json(&apps, "app", "list")
	if len(apps.Applications) != 1 {
		t.Errorf("rejected input left %d applications, want only web: %+v", len(apps.Applications), apps)
	}

	// The agent side: a token used up, a token that is not one, a server that does not answer.
	var tok struct{ Token string }
	s.json(&tok, "token", "create", "--env", "prod", "--uses", "1")
	enroll := func(server, token string) (string, int) {
		cmd := exec.Command(filepath.Join(binDir, "tentacle"), "enroll", "--data-dir", t.TempDir(), "--server", server, "--token", token, "--timeout", "5s")
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	if out, code := enroll(s.addr, tok.Token); code != 0 {
		t.Fatalf("first enroll with the token: exit %d: %s", code, out)
	}
	for _, tc := range []struct{ server, token, want string }{
		{s.addr, tok.Token, "tentacle: server refused enrollment: token: join token \"" + strings.Split(tok.Token, ".")[1] + "\" is used up (1 of 1 uses)\n"},
		{s.addr, "not-a-token", "tentacle: --token:"},
		{"127.0.0.1:1", tok.Token, "tentacle: cannot reach server at 127.0.0.1:1"},
		{"no-port", tok.Token, `tentacle: --server "no-port": want HOST:PORT`},
	} {
		out, code := enroll(tc.server, tc.token)
		if code == 0 || !strings.HasPrefix(out, tc.want) {
			t.Errorf("tentacle enroll --server %s --token %.12s…: exit %d, output %q; want non-zero and %q", tc.server, tc.token, code, out, tc.want)
		}
	}
	var targets targetsJSON
	s.json(&targets, "targets")
	if len(targets.Targets) != 1 {
		t.Errorf("%d targets after one good and three bad enrollments, want 1", len(targets.Targets))
	}

	s.addr = "127.0.0.1:1"
	if _, errOut, code := s.ctl("env", "list"); code == 0 || !strings.HasPrefix(errOut, "tentaclectl: cannot reach server at 127.0.0.1:1") {
		t.Errorf("tentaclectl against a dead address: exit %d, %q", code, errOut)
	}
}
