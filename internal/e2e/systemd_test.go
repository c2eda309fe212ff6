//go:build linux

package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/internal/systemdtest"
)

// The agent's paths inside the systemd container.
const (
	agentConfig = "/etc/tentacle/agent.yaml"
	agentUnit   = "tentacle"
	systemdEnv  = "systemd"
)

// agentInstall is how the agent got onto the machine, and how it leaves.
type agentInstall struct {
	how       string   // for the log
	uninstall []string // the command that removes it again
	packaged  bool     // the unit belongs to the package
}

// installer puts the agent into the container the way an operator would
// and says how to remove it again.
type installer func(t *testing.T, c *systemdtest.Container) agentInstall

// installDeb installs the .deb from `make packages` with dpkg.
func installDeb(t *testing.T, c *systemdtest.Container) agentInstall {
	t.Helper()
	deb := buildDeb(t, moduleRoot(t))
	c.CopyFile(deb, "/tmp/tentacle.deb", 0o644)
	if r := c.Exec("dpkg", "-i", "/tmp/tentacle.deb"); r.Code != 0 {
		t.Fatalf("dpkg -i %s: %s", filepath.Base(deb), r)
	}
	// The package may ship a config; the test's goes in only when not.
	if c.Exec("test", "-e", agentConfig).Code != 0 {
		c.WriteFile(agentConfig, []byte(agentYAML), 0o600)
	}
	// The package carries the unit and enables it; not enrolled yet, it is
	// not started.
	if r := c.Exec("systemctl", "is-enabled", agentUnit); strings.TrimSpace(r.Stdout) != "enabled" {
		t.Fatalf("after dpkg -i the unit is %q, want enabled: %s", strings.TrimSpace(r.Stdout), r)
	}
	if r := c.Exec("tentacle", "install", "--config", agentConfig); r.Code == 0 || !strings.Contains(r.Stderr, "already installed") {
		t.Errorf("tentacle install over the packaged unit: %s", r)
	}
	return agentInstall{how: "dpkg -i " + filepath.Base(deb), uninstall: []string{"dpkg", "-r", "tentacle"}, packaged: true}
}

// installBinary copies the static binary in and runs `tentacle install`,
// as on a machine without the package.
func installBinary(t *testing.T, c *systemdtest.Container) agentInstall {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tentacle")
	build := exec.Command("go", "build", "-o", bin, "./cmd/tentacle")
	build.Dir = moduleRoot(t)
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/tentacle: %v\n%s", err, out)
	}
	c.CopyFile(bin, "/usr/local/bin/tentacle", 0o755)
	c.WriteFile(agentConfig, []byte(agentYAML), 0o600)
	if r := c.Exec("tentacle", "install", "--config", agentConfig); r.Code != 0 {
		t.Fatalf("tentacle install --config %s: %s", agentConfig, r)
	}
	return agentInstall{how: "static binary + tentacle install", uninstall: []string{"tentacle", "uninstall"}}
}

const agentYAML = "data_dir: /var/lib/tentacle\nlog:\n  format: json\n"

// buildDeb runs `make packages` and returns the .deb it made for the host's
// architecture.
func buildDeb(t *testing.T, root string) string {
	t.Helper()
	mk := exec.Command("make", "packages")
	mk.Dir = root
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make packages: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(root, "bin", "packages", "*.deb"))
	arch := hostDebArch()
	for _, d := range debs {
		if strings.Contains(filepath.Base(d), "_"+arch+".deb") {
			return d
		}
	}
	if len(debs) == 1 {
		return debs[0]
	}
	t.Fatalf("make packages made no .deb for %s in bin/packages: %v", arch, debs)
	return ""
}

func hostDebArch() string {
	out, err := exec.Command("dpkg", "--print-architecture").Output()
	if err != nil {
		return "amd64"
	}
	return strings.TrimSpace(string(out))
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("find module root: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// serverLogCount counts the server's JSON log lines with this message.
func (s *system) serverLogCount(msg string) int {
	n := 0
	sc := bufio.NewScanner(strings.NewReader(s.server.out.String()))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			n++
		}
	}
	return n
}

// systemdTarget returns whether the one target in the systemd environment
// is connected, according to `tentaclectl targets -o json`.
func (s *system) systemdTarget() (found, connected bool) {
	s.t.Helper()
	var ts targetsJSON
	s.json(&ts, "targets")
	for _, tg := range ts.Targets {
		if tg.Environment == systemdEnv && tg.RevokedAt == "" {
			return true, tg.Connected
		}
	}
	return false, false
}

// TestAgentUnderSystemd installs the agent as a systemd service in a
// container with systemd as PID 1 and checks what an operator relies on:
// it runs, it is restarted when it dies, it stops cleanly, it comes back
// after a reboot, and uninstalling leaves no unit behind.
//
// It runs once per way of installing: the .deb and `tentacle install`.
func TestAgentUnderSystemd(t *testing.T) {
	docker := requireDocker(t)
	img := systemdtest.RequireImage(t, docker)
	buildBinaries(t)
	t.Run("deb", func(t *testing.T) { agentUnderSystemd(t, systemdtest.Start(t, docker, img), installDeb) })
	t.Run("tentacle install", func(t *testing.T) {
		agentUnderSystemd(t, systemdtest.Start(t, docker, img), installBinary)
	})
}

func agentUnderSystemd(t *testing.T, c *systemdtest.Container, install installer) {
	s := startSystem(t)
	inst := install(t, c)
	t.Logf("agent installed by %s", inst.how)

	s.ok("env", "create", systemdEnv)
	var tok struct{ Token string }
	s.json(&tok, "token", "create", "--env", systemdEnv, "--ttl", "10m")
	if r := c.Exec("tentacle", "enroll", "--config", agentConfig, "--server", s.addr, "--token", tok.Token); r.Code != 0 {
		t.Fatalf("tentacle enroll: %s", r)
	}
	if r := c.Exec("tentacle", "start"); r.Code != 0 {
		t.Fatalf("tentacle start: %s", r)
	}
	waitFor(t, "the unit to be active", 15*time.Second, func() bool { return c.IsActive(agentUnit) == "active" })
	if got := strings.TrimSpace(c.Exec("systemctl", "is-enabled", agentUnit).Stdout); got != "enabled" {
		t.Errorf("systemctl is-enabled %s = %q, want enabled (it must come back after a reboot)", agentUnit, got)
	}
	waitFor(t, "the target to connect", 20*time.Second, func() bool { _, ok := s.systemdTarget(); return ok })
	if r := c.Exec("tentacle", "status"); r.Code != 0 || !strings.Contains(r.Stdout, "running") || !strings.Contains(r.Stdout, s.addr) {
		t.Errorf("tentacle status with the service running (want running and %s): %s", s.addr, r)
	}
	// The unit's hardening must still let the agent reach the Docker socket:
	// the target reports the engine's version, not "unreachable".
	var ts targetsJSON
	s.json(&ts, "targets")
	for _, tg := range ts.Targets {
		if tg.Environment == systemdEnv && (tg.DockerVersion == "" || tg.DockerVersion == "unreachable") {
			t.Errorf("under the systemd unit the agent reports Docker %q: the hardening blocks the socket", tg.DockerVersion)
		}
	}

	t.Run("kill -9 restarts", func(t *testing.T) {
		pid := c.UnitProperty(agentUnit, "MainPID")
		if pid == "0" {
			t.Fatal("the active unit has no MainPID")
		}
		connects := s.serverLogCount("agent connected")
		killed := time.Now()
		c.MustExec("/bin/sh", "-c", "kill -9 "+pid)
		var newPID string
		waitFor(t, "a new MainPID", 15*time.Second, func() bool {
			newPID = c.UnitProperty(agentUnit, "MainPID")
			return newPID != "0" && newPID != pid && c.IsActive(agentUnit) == "active"
		})
		restarted := time.Since(killed)
		waitFor(t, "the agent to reconnect", 20*time.Second, func() bool {
			if s.serverLogCount("agent connected") <= connects {
				return false
			}
			_, ok := s.systemdTarget()
			return ok
		})
		t.Logf("kill -9 %s: systemd restarted it as %s after %s, reconnected after %s (NRestarts=%s)",
			pid, newPID, restarted.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond), c.UnitProperty(agentUnit, "NRestarts"))
	})

	t.Run("systemctl stop", func(t *testing.T) {
		if r := c.Exec("systemctl", "stop", agentUnit); r.Code != 0 {
			t.Fatalf("systemctl stop: %s", r)
		}
		if got := c.IsActive(agentUnit); got != "inactive" {
			t.Errorf("after systemctl stop the unit is %q, want inactive (a clean exit, not failed)", got)
		}
		waitFor(t, "the server to see the target disconnected", 15*time.Second, func() bool { found, ok := s.systemdTarget(); return found && !ok })
		c.MustExec("systemctl", "start", agentUnit)
		waitFor(t, "the target to reconnect", 20*time.Second, func() bool { _, ok := s.systemdTarget(); return ok })
	})

	t.Run("reboot", func(t *testing.T) {
		connects := s.serverLogCount("agent connected")
		rebooted := time.Now()
		c.Reboot()
		if got := c.IsActive(agentUnit); got != "active" && got != "activating" {
			t.Fatalf("after the reboot the unit is %q, want active", got)
		}
		waitFor(t, "the agent to reconnect after the reboot", 30*time.Second, func() bool {
			if s.serverLogCount("agent connected") <= connects {
				return false
			}
			_, ok := s.systemdTarget()
			return ok
		})
		t.Logf("reboot: reconnected %s after the container stop", time.Since(rebooted).Round(time.Millisecond))
	})

	t.Run("uninstall", func(t *testing.T) {
		if inst.packaged {
			r := c.Exec("tentacle", "uninstall")
			if r.Code == 0 || !strings.Contains(r.Stderr, "the service comes from the tentacle package (/lib/systemd/system/tentacle.service): remove the package instead") {
				t.Errorf("tentacle uninstall of a packaged unit: %s", r)
			}
		}
		if r := c.Exec(inst.uninstall...); r.Code != 0 {
			t.Fatalf("%s: %s", strings.Join(inst.uninstall, " "), r)
		}
		if r := c.Exec("systemctl", "cat", agentUnit); r.Code == 0 {
			t.Errorf("systemctl cat %s still finds a unit after uninstall:\n%s", agentUnit, r.Stdout)
		}
		for _, dir := range []string{"/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"} {
			if r := c.Exec("test", "-e", dir+"/tentacle.service"); r.Code == 0 {
				t.Errorf("%s/tentacle.service is still there after uninstall", dir)
			}
		}
		if got := c.IsActive(agentUnit); got == "active" {
			t.Errorf("the agent still runs after uninstall")
		}
		waitFor(t, "the server to see the target disconnected", 15*time.Second, func() bool { found, ok := s.systemdTarget(); return found && !ok })
	})
}
