package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/tentacle-deploy/tentacle/internal/testimage"
)

// binDir holds the three binaries, built once for the package's tests.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tentacle-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var buildOnce sync.Once
var buildErr error

// buildBinaries compiles cmd/... from the module root, once.
func buildBinaries(t *testing.T) {
	t.Helper()
	buildOnce.Do(func() {
		root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
		if err != nil {
			buildErr = fmt.Errorf("find module root: %w", err)
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+string(os.PathSeparator), "./cmd/tentacle", "./cmd/tentacle-server", "./cmd/tentaclectl")
		cmd.Dir = strings.TrimSpace(string(root))
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

func requireDocker(t *testing.T) *client.Client { return testimage.RequireEngine(t) }

// proc is a running binary whose output is kept for the failure report.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *testimage.SyncBuffer
	done chan struct{}
}

// start runs a binary until the test ends (SIGTERM, then SIGKILL).
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(filepath.Join(binDir, name), args...), out: &testimage.SyncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("--- output of %s %s ---\n%s", name, strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// system is a server process and the environment tentaclectl talks to it with.
type system struct {
	t       *testing.T
	dataDir string
	addr    string
	token   string
	server  *proc
	home    string
}

// startSystem runs `tentacle-server serve` and reads its address and
// bootstrap token from its output, as an operator would.
func startSystem(t *testing.T) *system {
	t.Helper()
	buildBinaries(t)
	s := &system{t: t, dataDir: t.TempDir(), home: t.TempDir()}
	s.serve("127.0.0.1:0")
	return s
}

// serve starts `tentacle-server serve` on listen with the system's data
// dir (again, after a restart) and waits until it says it is serving. The
// bootstrap token is printed only on the first start.
func (s *system) serve(listen string, extra ...string) {
	s.t.Helper()
	// A free port for /metrics and the probes: tests run servers in parallel.
	args := append([]string{"serve", "--data-dir", s.dataDir, "--listen", listen, "--http-listen", "127.0.0.1:0", "--log-format", "json", "--heartbeat", "2s"}, extra...)
	s.server = start(s.t, "tentacle-server", args...)
	s.addr = ""
	waitFor(s.t, "server address and bootstrap token", 30*time.Second, func() bool {
		sc := bufio.NewScanner(strings.NewReader(s.server.out.String()))
		for sc.Scan() {
			line := sc.Text()
			if tok, ok := strings.CutPrefix(strings.TrimSpace(line), "tntadm_"); ok {
				s.token = "tntadm_" + tok
			}
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "serving" {
				s.addr, _ = m["addr"].(string)
			}
		}
		return s.addr != "" && s.token != ""
	})
}

// ctl runs tentaclectl against the system and returns stdout, stderr and
// the exit code.
func (s *system) ctl(args ...string) (string, string, int) {
	s.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "tentaclectl"), args...)
	cmd.Env = append(os.Environ(), "TENTACLE_SERVER="+s.addr, "TENTACLE_TOKEN="+s.token,
		"TENTACLE_CA_FILE="+filepath.Join(s.dataDir, "pki", "ca.crt"), "HOME="+s.home, "XDG_CONFIG_HOME="+s.home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		s.t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

// ok runs tentaclectl and fails the test unless it exits 0.
func (s *system) ok(args ...string) string {
	s.t.Helper()
	out, errOut, code := s.ctl(args...)
	if code != 0 {
		s.t.Fatalf("tentaclectl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// json runs tentaclectl with -o json and decodes its output into v.
func (s *system) json(v any, args ...string) {
	s.t.Helper()
	out := s.ok(append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		s.t.Fatalf("tentaclectl %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// agentProc enrolls and runs a real agent with its own config file.
func (s *system) agentProc(env, name, registries string) *proc {
	s.t.Helper()
	var tok struct{ Token string }
	s.json(&tok, "token", "create", "--env", env, "--ttl", "10m")
	dir := s.t.TempDir()
	cfg := filepath.Join(dir, "tentacle.yaml")
	body := "data_dir: " + filepath.Join(dir, "data") + "\nlog:\n  format: json\n" + registries
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		s.t.Fatal(err)
	}
	enroll := exec.Command(filepath.Join(binDir, "tentacle"), "enroll", "--config", cfg, "--server", s.addr, "--token", tok.Token)
	if out, err := enroll.CombinedOutput(); err != nil {
		s.t.Fatalf("tentacle enroll: %v\n%s", err, out)
	}
	return start(s.t, "tentacle", "run", "--config", cfg)
}
