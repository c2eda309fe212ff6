package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/tentacle-deploy/tentacle/internal/mask"
	"github.com/tentacle-deploy/tentacle/internal/testimage"
)

// TestLiveTailAcrossTwoAgents runs two real agents on the local engine,
// deploys an application that prints a line every 100 ms with a secret in it, and
// reads its live log with `tentaclectl logs APP --env ENV` as a user would.
func TestLiveTailAcrossTwoAgents(t *testing.T) {
	docker := requireDocker(t)
	reg := testimage.StartRegistry(t, "tail-user", "tail-pass")
	reg.Push(t, "tail/web", "1.0", testimage.Image(t))
	s := startSystem(t)
	removeContainers(t, docker, "tail-web")
	s.ok("env", "create", "tail")
	creds := fmt.Sprintf("registries:\n  - registry: %s\n    username: tail-user\n    password: tail-pass\n", reg.Host())
	names, prefixes, agents := s.prefixedAgents("tail", creds, "ta-", "tb-")
	s.waitConnected(2)
	const secret = "tail-secret-0123456789"
	s.ok("app", "create", "tail-web", "--image", reg.Host()+"/tail/web", "--ready-after", "1s",
		"--env", "TESTAPP_LINES=100000", "--env", "TESTAPP_INTERVAL=100ms", "--env", "TESTAPP_MESSAGE=key=${API_KEY}")
	s.ok("var", "set", "tail-web", "API_KEY", secret, "--sensitive")
	s.ok("release", "create", "--app", "tail-web", "--tag", "1.0")
	s.ok("deploy", "--app", "tail-web", "--release", "1.0", "--env", "tail", "--wait")
	// The agent masks before anything leaves the host.
	masked := mask.Replacement

	t.Run("--tail 3 prints the last 3 lines of each target", func(t *testing.T) {
		time.Sleep(time.Second) // more than 3 lines printed
		out, errOut, code := s.ctl("logs", "tail-web", "--env", "tail", "--tail", "3")
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		lines := tailLines(out)
		for _, n := range names {
			got := lines[n]
			if len(got) != 3 {
				t.Errorf("%s: %d lines, want 3:\n%s", n, len(got), out)
				continue
			}
			for i, l := range got {
				if !strings.HasPrefix(l, "line ") || !strings.HasSuffix(l, " "+masked) {
					t.Errorf("%s: line %q, want \"line N ...%s\"", n, l, masked)
				}
				if i > 0 && lineNumber(l) != lineNumber(got[i-1])+1 {
					t.Errorf("%s: lines not consecutive: %q", n, got)
				}
			}
			if !strings.Contains(errOut, n+": end of log\n") {
				t.Errorf("stderr does not say %s's log ended:\n%s", n, errOut)
			}
		}
		if strings.Contains(out+errOut, secret) {
			t.Errorf("the secret is in the tail:\n%s", out)
		}
	})

	t.Run("-f streams both targets, one ends when its container stops, Ctrl-C ends the rest", func(t *testing.T) {
		cli := s.ctlProc("logs", "tail-web", "--env", "tail", "-f")
		counts := func() map[string]int {
			m := map[string]int{}
			for n, ls := range tailLines(cli.stdout.String()) {
				m[n] = len(ls)
			}
			return m
		}
		waitFor(t, "lines from both targets", 20*time.Second, func() bool {
			c := counts()
			return c[names[0]] >= 3 && c[names[1]] >= 3
		})
		// The prefix is padded to the widest target name.
		width := max(len(names[0]), len(names[1]))
		for _, n := range names {
			if want := fmt.Sprintf("%-*s | line ", width, n); !strings.Contains(cli.stdout.String(), want) {
				t.Errorf("no line starts with %q:\n%s", want, cli.stdout.String())
			}
		}

		stopped, running := names[0], names[1]
		timeout := 5
		if err := docker.ContainerStop(context.Background(), prefixes[stopped]+"tail-web", container.StopOptions{Timeout: &timeout}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, stopped+"'s tail ended", 20*time.Second, func() bool {
			return strings.Contains(cli.stderr.String(), stopped+": container stopped\n")
		})
		before := counts()[running]
		waitFor(t, running+" still streaming", 20*time.Second, func() bool { return counts()[running] >= before+5 })
		if strings.Contains(cli.stdout.String(), secret) {
			t.Errorf("the secret is in the tail")
		}

		cli.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-cli.done:
		case <-time.After(10 * time.Second):
			t.Fatal("tentaclectl logs -f still running 10 s after SIGINT")
		}
		if code := cli.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("exit code %d after SIGINT, want 0; stderr:\n%s", code, cli.stderr.String())
		}
		if strings.Contains(cli.stderr.String(), "tentaclectl:") {
			t.Errorf("an error after SIGINT:\n%s", cli.stderr.String())
		}
		waitFor(t, running+"'s agent stopped streaming", 10*time.Second, func() bool {
			return strings.Contains(agents[running].out.String(), "live tail stopped by the server")
		})
	})

	t.Run("a target without the container says so", func(t *testing.T) {
		removeContainers(t, docker, "tail-web")
		out, errOut, code := s.ctl("logs", "tail-web", "--env", "tail", "--target", names[1])
		if code != 0 || out != "" {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		if want := fmt.Sprintf("%s: no container named %stail-web on this host\n", names[1], prefixes[names[1]]); errOut != want {
			t.Errorf("stderr %q, want %q", errOut, want)
		}
	})
}

var tailLine = regexp.MustCompile(`^(\S+)\s* \| (.*)$`)

// tailLines groups the lines of `tentaclectl logs APP --env ENV` by target.
func tailLines(out string) map[string][]string {
	m := map[string][]string{}
	for _, l := range strings.Split(out, "\n") {
		if g := tailLine.FindStringSubmatch(l); g != nil {
			m[g[1]] = append(m[g[1]], g[2])
		}
	}
	return m
}

// lineNumber is N of testapp's "line N ..." (-1 for anything else).
func lineNumber(l string) int {
	var n int
	if _, err := fmt.Sscanf(l, "line %d", &n); err != nil {
		return -1
	}
	return n
}

// ctlProc is tentaclectl running in the background, its stdout and stderr
// kept apart.
type ctlProc struct {
	cmd            *exec.Cmd
	stdout, stderr *testimage.SyncBuffer
	done           chan struct{}
}

// ctlProc starts tentaclectl against the system; it is killed when the
// test ends if still running.
func (s *system) ctlProc(args ...string) *ctlProc {
	s.t.Helper()
	p := &ctlProc{cmd: exec.Command(filepath.Join(binDir, "tentaclectl"), args...),
		stdout: &testimage.SyncBuffer{}, stderr: &testimage.SyncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = slices.Concat(os.Environ(), s.ctlEnv())
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	s.t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if s.t.Failed() {
			s.t.Logf("--- tentaclectl %s ---\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), p.stdout.String(), p.stderr.String())
		}
	})
	return p
}

// ctlEnv points tentaclectl at the system, as s.ctl does.
func (s *system) ctlEnv() []string {
	return []string{"TENTACLE_SERVER=" + s.addr, "TENTACLE_TOKEN=" + s.token,
		"TENTACLE_CA_FILE=" + filepath.Join(s.dataDir, "pki", "ca.crt"), "HOME=" + s.home, "XDG_CONFIG_HOME=" + s.home}
}

// prefixedAgents enrolls and runs one agent into env per container prefix
// (so that several agents share the local engine, as hosts would have
// their own), with config extra. It returns the target names in the order
// of the prefixes, and each target's prefix and process.
func (s *system) prefixedAgents(env, extra string, prefixes ...string) ([]string, map[string]string, map[string]*proc) {
	s.t.Helper()
	var names []string
	prefixOf, procOf := map[string]string{}, map[string]*proc{}
	for i, p := range prefixes {
		a := s.agentProc(env, p, extra+"container_prefix: "+p+"\n")
		var ts targetsJSON
		waitFor(s.t, "agent enrolled", 30*time.Second, func() bool {
			s.json(&ts, "targets")
			return len(ts.Targets) == i+1
		})
		for _, tg := range ts.Targets {
			if _, ok := prefixOf[tg.Name]; !ok {
				prefixOf[tg.Name], procOf[tg.Name] = p, a
				names = append(names, tg.Name)
			}
		}
	}
	return names, prefixOf, procOf
}
