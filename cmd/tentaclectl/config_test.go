package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

// Each setting is taken from the flag, else the environment, else the config
// file, else the default. A wrong value at every lower level proves the
// higher one won: the call only succeeds with the right server, CA and token.
func TestSettingsPrecedence(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	bad := closedAddr(t)
	badCA := filepath.Join(t.TempDir(), "other-ca.pem")
	otherCA, _ := newTestPKI(t)
	if err := os.WriteFile(badCA, otherCA, 0o600); err != nil {
		t.Fatal(err)
	}
	right := map[string]string{"server": h.addr, "token": testToken, "ca_file": h.caFile}
	wrong := map[string]string{"server": bad, "token": "wrong-token", "ca_file": badCA}
	envName := map[string]string{"server": "TENTACLE_SERVER", "token": "TENTACLE_TOKEN", "ca_file": "TENTACLE_CA_FILE"}
	flagName := map[string]string{"server": "--server", "token": "--token", "ca_file": "--ca-file"}

	for _, key := range []string{"server", "token", "ca_file"} {
		for _, level := range []string{"flag", "env", "file"} {
			t.Run(key+" from "+level, func(t *testing.T) {
				// Start with every setting right in the file, then put the
				// key under test wrong below its level and right at it.
				file := map[string]string{}
				env := map[string]string{}
				var args []string
				for k, v := range right {
					file[k] = v
				}
				switch level {
				case "flag":
					file[key], env[envName[key]] = wrong[key], wrong[key]
					args = append(args, flagName[key]+"="+right[key])
				case "env":
					file[key], env[envName[key]] = wrong[key], right[key]
				}
				var yaml strings.Builder
				for k, v := range file {
					yaml.WriteString(k + ": " + v + "\n")
				}
				h.writeConfig(t, yaml.String())
				r := h.runEnv(t, t.Context(), env, append(args, "envs")...)
				wantCode(t, r, 0)
			})
		}
	}
	// Each subtest writes the shared config file, so they run one by one.
}

func TestDefaultServer(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	r := h.runEnv(t, t.Context(), map[string]string{"TENTACLE_TOKEN": testToken}, "envs", "--timeout", "2s")
	// Nothing of ours listens on localhost:8443; whatever does, the CLI must
	// have tried that address.
	if r.code == 0 || !strings.HasPrefix(r.stderr, "tentaclectl: cannot reach server at localhost:8443: ") {
		t.Skipf("something answers on localhost:8443 (exit %d): %s", r.code, r.stderr)
	}
}

func TestConfigFile(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	dir := t.TempDir()
	// A relative ca_file is relative to the config file.
	ca, err := os.ReadFile(h.caFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "ctl.yaml")
	if err := os.WriteFile(cfg, []byte("# staging\nserver: "+h.addr+"\ntoken: "+testToken+"\nca_file: ca.pem\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := h.runEnv(t, t.Context(), nil, "--config", cfg, "envs")
	wantCode(t, r, 0)
	h.fake.only(t)
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	missing := filepath.Join(dir, "missing.yaml")
	tests := []struct {
		path, want string
	}{
		{missing, "config: open " + missing + ": no such file or directory"},
		{write("unknown.yaml", "server: x:1\ntokn: abc\n"), `line 2: unknown key "tokn": use server, token or ca_file`},
		{write("twice.yaml", "token: a\ntoken: b\n"), `line 2: key "token" is set twice`},
		{write("list.yaml", "server: [a, b]\n"), "line 1: server must be a string"},
		{write("scalar.yaml", "just text\n"), "line 1: want a mapping with the keys server, token and ca_file"},
	}
	for _, tt := range tests {
		r := h.runEnv(t, t.Context(), h.env(), "--config", tt.path, "envs")
		want := "tentaclectl: config " + tt.path + ": " + tt.want + "\n"
		if strings.HasPrefix(tt.want, "config: ") {
			want = "tentaclectl: " + tt.want + "\n"
		}
		if r.code != 1 || r.stderr != want {
			t.Errorf("--config %s: exit %d, stderr\n got: %s\nwant: %s", filepath.Base(tt.path), r.code, r.stderr, want)
		}
	}
	if n := h.fake.count(); n != 0 {
		t.Errorf("server got %d requests", n)
	}

	// A missing default config file is fine; an empty one too.
	wantCode(t, h.run(t, "envs"), 0)
	h.writeConfig(t, "")
	wantCode(t, h.run(t, "envs"), 0)
}

func TestMissingToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	env := h.env()
	delete(env, "TENTACLE_TOKEN")
	r := h.runEnv(t, t.Context(), env, "envs")
	wantCode(t, r, 1)
	path := filepath.Join(h.configDir, "tentacle", "tentaclectl.yaml")
	if want := "tentaclectl: no admin token: pass --token, set TENTACLE_TOKEN, or put token: in " + path + "\n"; r.stderr != want {
		t.Errorf("stderr\n got: %s\nwant: %s", r.stderr, want)
	}
	if n := h.fake.count(); n != 0 {
		t.Errorf("server got %d requests", n)
	}
}

func TestUnreachableServer(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	addr := closedAddr(t)
	env := h.env()
	env["TENTACLE_SERVER"] = addr
	for _, args := range [][]string{{"envs"}, {"logs", "task-1", "-f"}, {"deploy", "--app", "web", "--release", "1", "--env", "prod", "--wait"}} {
		start := time.Now()
		r := h.runEnv(t, t.Context(), env, args...)
		wantCode(t, r, 1)
		want := "tentaclectl: cannot reach server at " + addr + ": dial tcp " + addr + ": connect: connection refused\n"
		if r.stderr != want {
			t.Errorf("%q: stderr\n got: %s\nwant: %s", args, r.stderr, want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%q: took %s to give up", args, d)
		}
	}
}

func TestUnknownServerCA(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	env := h.env()
	delete(env, "TENTACLE_CA_FILE") // the system roots do not know our test CA
	r := h.runEnv(t, t.Context(), env, "envs")
	wantCode(t, r, 1)
	if !strings.HasPrefix(r.stderr, "tentaclectl: cannot reach server at "+h.addr+": tls: failed to verify certificate: x509: certificate signed by unknown authority") ||
		!strings.HasSuffix(r.stderr, "\nhint: trust the server's CA with --ca-file, TENTACLE_CA_FILE or ca_file: in the config file (tentacle-server dev prints it)\n") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
}

func TestBadCAFile(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := h.run(t, "envs", "--ca-file", notPEM)
	wantCode(t, r, 1)
	if want := "tentaclectl: CA file " + notPEM + " (from --ca-file): no PEM certificate in it\n"; r.stderr != want {
		t.Errorf("stderr\n got: %s\nwant: %s", r.stderr, want)
	}
}

func TestBadServerAddress(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	env := h.env()
	env["TENTACLE_SERVER"] = "tentacle.example.com"
	r := h.runEnv(t, t.Context(), env, "envs")
	wantCode(t, r, 2)
	if want := `tentaclectl: server address "tentacle.example.com" (from TENTACLE_SERVER): want HOST:PORT, e.g. localhost:8443`; !strings.HasPrefix(r.stderr, want+"\n") {
		t.Errorf("stderr\n got: %s\nwant: %s", r.stderr, want)
	}
}

// Server errors show the status message only, without gRPC's framing.
func TestServerErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want string
	}{
		{status.Error(codes.NotFound, `environment "prod" not found`), "tentaclectl: environment \"prod\" not found\n"},
		{status.Error(codes.InvalidArgument, "image_repository: bad"), "tentaclectl: image_repository: bad\n"},
		{status.Error(codes.PermissionDenied, "role viewer may not create deployments"), "tentaclectl: role viewer may not create deployments\n"},
		{status.Error(codes.Unauthenticated, "invalid admin token: unknown or revoked"), "tentaclectl: invalid admin token: unknown or revoked\n" +
			"hint: the server did not accept the admin token; check --token, TENTACLE_TOKEN or token: in the config file\n"},
		{status.Error(codes.Unimplemented, "unknown method"), "tentaclectl: server at %s does not support this call (is it older than tentaclectl?): unknown method\n"},
	}
	for _, tt := range tests {
		h := newHarness(t, &fakeAdmin{fail: tt.err})
		for _, args := range [][]string{{"envs"}, {"logs", "task-1"}, {"deploy", "--app", "web", "--release", "1", "--env", "prod", "--wait"}} {
			r := h.run(t, args...)
			wantCode(t, r, 1)
			want := tt.want
			if strings.Contains(want, "%s") {
				want = strings.Replace(want, "%s", h.addr, 1)
			}
			if r.stderr != want {
				t.Errorf("%v, %q: stderr\n got: %s\nwant: %s", tt.err, args, r.stderr, want)
			}
		}
	}
}

// A server that accepts connections but never answers must not hang the CLI:
// --timeout bounds unary calls and, for streams, the connection attempt.
func TestSilentServer(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			conn, err := lis.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { conn.Close() })
		}
	}()
	h := newHarness(t, &fakeAdmin{})
	env := h.env()
	env["TENTACLE_SERVER"] = lis.Addr().String()
	for _, args := range [][]string{{"envs"}, {"logs", "task-1", "-f"}} {
		start := time.Now()
		r := h.runEnv(t, t.Context(), env, append(args, "--timeout", "300ms")...)
		wantCode(t, r, 1)
		if want := "tentaclectl: cannot reach server at " + lis.Addr().String() + ": no answer within 300ms (--timeout)\n"; r.stderr != want {
			t.Errorf("%q: stderr\n got: %s\nwant: %s", args, r.stderr, want)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%q: took %s to give up", args, d)
		}
	}
}
