//go:build linux

package systemdtest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
)

// Label marks every container this package starts, for cleaning up leftovers
// of killed test runs: docker rm -f $(docker ps -aq --filter label=tentacle-test=systemd)
const Label = "tentacle-test"

// Container is a running systemd container, removed when the test ends.
type Container struct {
	t    testing.TB
	cli  *client.Client
	ID   string
	Name string
}

// Result is what a command run in the container printed and its exit code.
type Result struct {
	Stdout, Stderr string
	Code           int
}

func (r Result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
}

// HostConfig holds the options under which systemd boots as PID 1 without
// --privileged:
//
//	docker run --cap-add SYS_ADMIN --cgroupns=host \
//	  -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock \
//	  --network host -v /var/run/docker.sock:/var/run/docker.sock \
//	  --stop-signal SIGRTMIN+3 tentacle-test/systemd:bookworm-1
//
// On a cgroup v1 engine (Docker 20.10, cgroupfs driver) SYS_ADMIN and the
// /sys/fs/cgroup bind are what systemd cannot boot without; --cgroupns=host
// is the v1 default and what a cgroup v2 engine needs for the bind to be the
// real tree. The tmpfs mounts give every start a fresh /run, as a reboot
// does. Neither seccomp=unconfined nor an AppArmor change is needed.
//
// Host networking lets the agent reach a server the test runs on 127.0.0.1,
// and the engine's socket gives it the host's Docker to deploy to.
func HostConfig(dockerSocket string) *container.HostConfig {
	hc := &container.HostConfig{
		NetworkMode:  "host",
		CgroupnsMode: container.CgroupnsModeHost,
		Binds:        []string{"/sys/fs/cgroup:/sys/fs/cgroup:rw"},
		// A fresh /run on every start, as after a reboot.
		Tmpfs: map[string]string{"/run": "rw,mode=755", "/run/lock": "rw,mode=1777"},
	}
	hc.CapAdd = []string{"SYS_ADMIN"}
	if dockerSocket != "" {
		hc.Binds = append(hc.Binds, dockerSocket+":/var/run/docker.sock")
	}
	return hc
}

// engineSocket is the host path of the engine's unix socket, or "" when the
// engine is reached another way (then the container gets no Docker).
func engineSocket() string {
	h := os.Getenv("DOCKER_HOST")
	if h == "" {
		return "/var/run/docker.sock"
	}
	if u, err := url.Parse(h); err == nil && u.Scheme == "unix" {
		return u.Path
	}
	return ""
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// Start creates and boots a systemd container from the image (see
// RequireImage) and waits until systemd has finished starting up. The
// container is removed when the test ends; if the test failed, the journal
// is logged first.
func Start(t testing.TB, cli *client.Client, img string) *Container {
	t.Helper()
	ctx := context.Background()
	suffix := make([]byte, 4)
	rand.Read(suffix)
	name := "tentacle-systemd-" + strings.ToLower(unsafeName.ReplaceAllString(t.Name(), "-"))
	if len(name) > 50 {
		name = name[:50]
	}
	name += "-" + hex.EncodeToString(suffix)
	cfg := &container.Config{
		Image:      img,
		Cmd:        []string{"/sbin/init"},
		Env:        []string{"container=docker"},
		Labels:     map[string]string{Label: "systemd"},
		StopSignal: "SIGRTMIN+3", // systemd's "halt": a clean shutdown on docker stop
		Tty:        true,         // the console gets systemd's boot messages, for the logs
	}
	resp, err := cli.ContainerCreate(ctx, cfg, HostConfig(engineSocket()), nil, nil, name)
	if err != nil {
		t.Fatalf("systemdtest: create container: %v", err)
	}
	c := &Container{t: t, cli: cli, ID: resp.ID, Name: name}
	t.Cleanup(func() {
		if t.Failed() {
			r := c.Exec("journalctl", "-b", "--no-pager", "-n", "300")
			t.Logf("--- journal of %s ---\n%s%s", name, r.Stdout, r.Stderr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			t.Logf("systemdtest: remove container %s: %v", name, err)
		}
	})
	c.boot()
	return c
}

// boot starts the container and waits for systemd to be up.
func (c *Container) boot() {
	c.t.Helper()
	start := time.Now()
	if err := c.cli.ContainerStart(context.Background(), c.ID, container.StartOptions{}); err != nil {
		c.t.Fatalf("systemdtest: start container: %v", err)
	}
	state, failed := c.WaitSystem(90 * time.Second)
	c.t.Logf("systemdtest: %s booted in %s: %s", c.Name, time.Since(start).Round(time.Millisecond), state)
	if len(failed) > 0 {
		c.t.Logf("systemdtest: failed units: %s", strings.Join(failed, ", "))
	}
}

// WaitSystem waits for `systemctl is-system-running --wait` and returns the
// state with the failed units. "running" and "degraded" (some unit failed)
// both count as booted; anything else fails the test.
func (c *Container) WaitSystem(timeout time.Duration) (string, []string) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var r Result
	for {
		// Right after the start, systemd's bus may not be up yet.
		r = c.ExecTimeout(timeout, "systemctl", "is-system-running", "--wait")
		state := strings.TrimSpace(r.Stdout)
		if state == "running" || state == "degraded" {
			var failed []string
			if state == "degraded" {
				out := c.Exec("systemctl", "list-units", "--failed", "--plain", "--no-legend", "--no-pager").Stdout
				for _, line := range strings.Split(out, "\n") {
					if f := strings.Fields(line); len(f) > 0 {
						failed = append(failed, f[0])
					}
				}
			}
			return state, failed
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("systemdtest: systemd in %s did not come up in %s: %s\n%s", c.Name, timeout, r, c.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Logs returns the container's console output (systemd's boot messages).
func (c *Container) Logs() string {
	rc, err := c.cli.ContainerLogs(context.Background(), c.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "100"})
	if err != nil {
		return "(no logs: " + err.Error() + ")"
	}
	defer rc.Close()
	var b bytes.Buffer
	b.ReadFrom(rc)
	return b.String()
}

// Exec runs a command in the container, as root, with a one minute limit.
func (c *Container) Exec(cmd ...string) Result {
	c.t.Helper()
	return c.ExecTimeout(time.Minute, cmd...)
}

// ExecTimeout runs a command in the container and returns its output and
// exit code. Failing to run it at all fails the test.
func (c *Container) ExecTimeout(timeout time.Duration, cmd ...string) Result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ex, err := c.cli.ContainerExecCreate(ctx, c.ID, container.ExecOptions{
		Cmd: cmd, AttachStdout: true, AttachStderr: true,
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SYSTEMD_PAGER=", "LANG=C.UTF-8"},
	})
	if err != nil {
		c.t.Fatalf("systemdtest: exec %q: %v", cmd, err)
	}
	att, err := c.cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		c.t.Fatalf("systemdtest: exec %q: %v", cmd, err)
	}
	defer att.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader); err != nil {
		c.t.Fatalf("systemdtest: exec %q: read output: %v", cmd, err)
	}
	// The output ends before the engine has recorded the exit code.
	for {
		in, err := c.cli.ContainerExecInspect(ctx, ex.ID)
		if err != nil {
			c.t.Fatalf("systemdtest: exec %q: %v", cmd, err)
		}
		if !in.Running {
			return Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: in.ExitCode}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// MustExec runs a command and fails the test unless it exits 0; it returns
// the trimmed standard output.
func (c *Container) MustExec(cmd ...string) string {
	c.t.Helper()
	r := c.Exec(cmd...)
	if r.Code != 0 {
		c.t.Fatalf("systemdtest: %s: %s", strings.Join(cmd, " "), r)
	}
	return strings.TrimSpace(r.Stdout)
}

// Sh runs a shell command line in the container.
func (c *Container) Sh(script string) Result {
	c.t.Helper()
	return c.Exec("/bin/sh", "-c", script)
}

// WriteFile puts data at path in the container (parent directories are
// created), owned by root.
func (c *Container) WriteFile(path string, data []byte, mode os.FileMode) {
	c.t.Helper()
	if !strings.HasPrefix(path, "/") {
		c.t.Fatalf("systemdtest: WriteFile needs an absolute path, got %q", path)
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	rel := strings.TrimPrefix(path, "/")
	// Directories first, so that missing parents are made 0755.
	parts := strings.Split(rel, "/")
	for i := 1; i < len(parts); i++ {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.Join(parts[:i], "/") + "/", Mode: 0o755, ModTime: time.Now()})
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: int64(mode.Perm()), Size: int64(len(data)), ModTime: time.Now()}); err != nil {
		c.t.Fatal(err)
	}
	tw.Write(data)
	if err := tw.Close(); err != nil {
		c.t.Fatal(err)
	}
	if err := c.cli.CopyToContainer(context.Background(), c.ID, "/", &b, container.CopyToContainerOptions{}); err != nil {
		c.t.Fatalf("systemdtest: copy %s into %s: %v", path, c.Name, err)
	}
}

// CopyFile copies a host file into the container at path.
func (c *Container) CopyFile(hostPath, path string, mode os.FileMode) {
	c.t.Helper()
	data, err := os.ReadFile(hostPath)
	if err != nil {
		c.t.Fatal(err)
	}
	c.WriteFile(path, data, mode)
}

// Reboot stops the container (systemd shuts down cleanly on SIGRTMIN+3),
// starts it again and waits for systemd to be up. /run is a fresh tmpfs and
// every process is new, as after a real reboot; the disk is kept.
func (c *Container) Reboot() {
	c.t.Helper()
	start := time.Now()
	timeout := 30
	if err := c.cli.ContainerStop(context.Background(), c.ID, container.StopOptions{Timeout: &timeout}); err != nil {
		c.t.Fatalf("systemdtest: stop container: %v", err)
	}
	c.t.Logf("systemdtest: %s shut down in %s", c.Name, time.Since(start).Round(time.Millisecond))
	c.boot()
}

// UnitProperty returns one property of a unit (systemctl show -p NAME --value).
func (c *Container) UnitProperty(unit, name string) string {
	c.t.Helper()
	return c.MustExec("systemctl", "show", "-p", name, "--value", unit)
}

// IsActive returns the unit's `systemctl is-active` answer.
func (c *Container) IsActive(unit string) string {
	c.t.Helper()
	return strings.TrimSpace(c.Exec("systemctl", "is-active", unit).Stdout)
}
