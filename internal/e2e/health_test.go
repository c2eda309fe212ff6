package e2e

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/tentacle-deploy/tentacle/internal/faultproxy"
	"github.com/tentacle-deploy/tentacle/internal/testimage"
)

// targetShowJSON is `tentaclectl target show NAME -o json`.
type targetShowJSON struct {
	Target struct {
		Name          string
		HealthState   string
		HealthReasons []string
		Health        struct {
			Engine struct {
				Reachable bool
				Error     string
				Version   string
			}
			Containers []struct {
				Application, State, Health, TaskId string
				RestartCount                       string // int64: a JSON string
			}
			Drift []struct{ Application, Kind, Detail string }
		}
	}
}

type statusJSON struct {
	Applications []struct {
		Application, Environment, State string
		Targets                         []struct {
			Target string
			Drift  *struct{ Kind, Detail string }
		}
	}
}

// TestHealthAndDrift runs a real server and agent on the local engine,
// the agent reaching Docker through a socket proxy the test can make
// unresponsive. What is done by hand to the deployed container shows in the
// target's state or as drift within seconds, deploy --missing puts drift
// right, a silent engine makes the target unhealthy, and a frozen or killed
// agent makes it unavailable.
func TestHealthAndDrift(t *testing.T) {
	docker := requireDocker(t)
	reg := testimage.StartRegistry(t, "hd-user", "hd-pass")
	reg.Push(t, "hd/web", "1.0", testimage.Image(t, testimage.WithHealthcheck(500*time.Millisecond, 2)))
	proxy, err := faultproxy.StartUnix("/var/run/docker.sock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })

	buildBinaries(t)
	s := &system{t: t, dataDir: t.TempDir(), home: t.TempDir()}
	// Heartbeats every 2 s (the harness's), so 6 s is the least timeout.
	s.serve("127.0.0.1:0", "--agent-timeout", "6s")
	const app, prefix = "hd-web", "hd-"
	name := prefix + app
	removeContainers(t, docker, name)
	s.ok("env", "create", "hd")
	names, _, procs := s.prefixedAgents("hd", fmt.Sprintf("registries:\n  - registry: %s\n    username: hd-user\n    password: hd-pass\ndocker_host: %s\n",
		reg.Host(), proxy.DockerHost()), prefix)
	target := names[0]
	agent := procs[target]
	s.waitConnected(1)

	show := func() targetShowJSON {
		var v targetShowJSON
		s.json(&v, "target", "show", target)
		return v
	}
	waitState := func(what, state string, cond func(targetShowJSON) bool) time.Duration {
		t.Helper()
		start := time.Now()
		var last targetShowJSON
		waitFor(t, what, 30*time.Second, func() bool {
			last = show()
			return last.Target.HealthState == "TARGET_HEALTH_STATE_"+state && (cond == nil || cond(last))
		})
		took := time.Since(start)
		t.Logf("%s: %s after %s (reasons %q)", what, state, took.Round(time.Millisecond), last.Target.HealthReasons)
		return took
	}
	drift := func() (kind string) {
		var st statusJSON
		s.json(&st, "status", "--app", app, "--env", "hd")
		for _, a := range st.Applications {
			for _, tg := range a.Targets {
				if tg.Target == target && tg.Drift != nil {
					return tg.Drift.Kind
				}
			}
		}
		return ""
	}
	waitDrift := func(kind string) {
		t.Helper()
		start := time.Now()
		waitFor(t, "drift "+kind, 30*time.Second, func() bool { return drift() == kind })
		t.Logf("drift %s shown after %s", kind, time.Since(start).Round(time.Millisecond))
	}
	fix := func() {
		t.Helper()
		s.ok("deploy", "--app", app, "--release", "1.0", "--env", "hd", "--missing", "--wait")
		waitDrift("")
		waitState("fixed by deploy --missing", "HEALTHY", nil)
		if c := inspect(t, docker, name); !c.State.Running {
			t.Fatalf("%s not running after deploy --missing", name)
		}
	}

	s.ok("app", "create", app, "--image", reg.Host()+"/hd/web", "--ready-after", "1s")
	s.ok("release", "create", "--app", app, "--tag", "1.0")
	s.ok("deploy", "--app", app, "--release", "1.0", "--env", "hd", "--wait")
	waitState("after the deployment", "HEALTHY", func(v targetShowJSON) bool {
		for _, c := range v.Target.Health.Containers {
			if c.Application == app && c.State == "running" && c.Health == "healthy" {
				return true
			}
		}
		return false
	})

	ctx := context.Background()
	exec := func(cmd ...string) {
		t.Helper()
		id, err := docker.ContainerExecCreate(ctx, name, container.ExecOptions{Cmd: cmd})
		if err != nil {
			t.Fatal(err)
		}
		if err := docker.ContainerExecStart(ctx, id.ID, container.ExecStartOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("unhealthy container degrades the target", func(t *testing.T) {
		exec("/testapp", "sick")
		waitState("container made unhealthy", "DEGRADED", func(v targetShowJSON) bool {
			return strings.Contains(strings.Join(v.Target.HealthReasons, "\n"), "unhealthy")
		})
		out := s.ok("targets")
		if !strings.Contains(out, "degraded") || !strings.Contains(out, "unhealthy") {
			t.Errorf("targets does not show the degraded state and its reason:\n%s", out)
		}
		exec("/testapp", "well")
		waitState("container well again", "HEALTHY", nil)
	})

	t.Run("container killed by hand is drift", func(t *testing.T) {
		if err := docker.ContainerKill(ctx, name, "KILL"); err != nil {
			t.Fatal(err)
		}
		waitDrift("stopped")
		waitState("killed", "DEGRADED", nil)
		fix()
	})

	t.Run("container removed by hand is drift", func(t *testing.T) {
		if err := docker.ContainerRemove(ctx, name, container.RemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		waitDrift("removed")
		fix()
	})

	t.Run("container replaced by hand is drift", func(t *testing.T) {
		c := inspect(t, docker, name)
		if err := docker.ContainerRemove(ctx, name, container.RemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		created, err := docker.ContainerCreate(ctx, &container.Config{Image: c.Config.Image}, nil, nil, nil, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := docker.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
			t.Fatal(err)
		}
		waitDrift("replaced")
		fix()
	})

	t.Run("engine unreachable makes the target unhealthy", func(t *testing.T) {
		proxy.Stall()
		waitState("engine stalled", "UNHEALTHY", nil)
		proxy.Heal()
		waitState("engine back", "HEALTHY", nil)
	})

	t.Run("frozen agent is unavailable after --agent-timeout", func(t *testing.T) {
		agent.cmd.Process.Signal(syscall.SIGSTOP)
		took := waitState("agent frozen", "UNAVAILABLE", nil)
		agent.cmd.Process.Signal(syscall.SIGCONT)
		if took < 3*time.Second {
			t.Errorf("unavailable %s after the agent froze: before --agent-timeout 6s less a heartbeat", took)
		}
		waitState("agent thawed", "HEALTHY", nil)
	})

	t.Run("killed agent is unavailable", func(t *testing.T) {
		agent.cmd.Process.Kill()
		waitState("agent killed", "UNAVAILABLE", nil)
	})
}
