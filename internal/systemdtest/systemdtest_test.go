//go:build linux

package systemdtest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/internal/systemdtest"
	"github.com/tentacle-deploy/tentacle/internal/testimage"
)

const smokeUnit = `[Unit]
Description=systemdtest smoke service

[Service]
ExecStart=/bin/sleep infinity
Restart=always
RestartSec=200ms

[Install]
WantedBy=multi-user.target
`

// TestSmoke proves the harness: a unit is enabled and started, comes back
// after kill -9 (Restart=always) and after a reboot of the container.
func TestSmoke(t *testing.T) {
	cli := testimage.RequireEngine(t)
	img := systemdtest.RequireImage(t, cli)
	c := systemdtest.Start(t, cli, img)

	if got := c.MustExec("cat", "/proc/1/comm"); got != "systemd" {
		t.Fatalf("PID 1 is %q, want systemd", got)
	}
	c.WriteFile("/etc/systemd/system/smoke.service", []byte(smokeUnit), 0o644)
	c.MustExec("systemctl", "daemon-reload")
	c.MustExec("systemctl", "enable", "--now", "smoke.service")
	if got := c.IsActive("smoke"); got != "active" {
		t.Fatalf("smoke is %q after enable --now", got)
	}

	pid := c.UnitProperty("smoke", "MainPID")
	killed := time.Now()
	c.MustExec("/bin/sh", "-c", "kill -9 "+pid) // kill is a shell builtin in minbase (no procps)
	var newPID string
	for {
		newPID = c.UnitProperty("smoke", "MainPID")
		if newPID != "0" && newPID != pid && c.IsActive("smoke") == "active" {
			break
		}
		if time.Since(killed) > 10*time.Second {
			t.Fatalf("smoke did not restart after kill -9 of %s: MainPID %s, %s", pid, newPID, c.IsActive("smoke"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("kill -9 %s: restarted as %s in %s", pid, newPID, time.Since(killed).Round(time.Millisecond))

	// The host's engine is reachable through the mounted socket.
	if r := c.Exec("test", "-S", "/var/run/docker.sock"); r.Code != 0 {
		t.Errorf("no docker socket in the container: %s", r)
	}

	c.MustExec("touch", "/run/before-reboot")
	before := c.MustExec("systemctl", "show", "-p", "ActiveEnterTimestampMonotonic", "--value", "smoke")
	c.Reboot()
	if got := c.IsActive("smoke"); got != "active" {
		t.Fatalf("smoke is %q after the reboot", got)
	}
	if got := c.MustExec("systemctl", "is-enabled", "smoke"); got != "enabled" {
		t.Fatalf("smoke is %q after the reboot", got)
	}
	after := c.MustExec("systemctl", "show", "-p", "ActiveEnterTimestampMonotonic", "--value", "smoke")
	if before == after {
		t.Errorf("smoke kept its start time %s across the reboot: not a new boot", after)
	}
	if r := c.Exec("test", "-e", "/run/before-reboot"); r.Code == 0 {
		t.Errorf("/run survived the reboot")
	}
	if r := c.Exec("systemctl", "cat", "nosuch.service"); r.Code == 0 || !strings.Contains(r.Stderr, "No files found") {
		t.Errorf("systemctl cat of a missing unit: %s", r)
	}
}
