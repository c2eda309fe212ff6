package agent

import (
	"context"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/docker/docker/client"
	"go.uber.org/zap/zaptest"

	"github.com/tentacle-deploy/tentacle/agent/docker"
	"github.com/tentacle-deploy/tentacle/internal/faultproxy"
	"github.com/tentacle-deploy/tentacle/internal/testimage"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// With the real engine: the application the agent deployed is in the
// report right after Welcome, running; `docker kill` by hand is in a new
// report within seconds, through Docker's events.
func TestHealthReportsContainerKilledByHand(t *testing.T) {
	t.Parallel()
	f := newEngineFixture(t, "tt-health")
	reports := healthSession(t, f.d, nil, time.Hour, func(a *testAgentT) {
		as := f.assignment("t0")
		a.journal.Accept(as)
		a.execute(context.Background(), as, false)
		if e := waitFinal(t, a, "t0"); e.State != stateSucceeded {
			t.Fatalf("deploy = %+v", e)
		}
	})
	app := func(r *tentaclev1.HealthReport) *tentaclev1.ContainerHealth {
		i := slices.IndexFunc(r.GetContainers(), func(c *tentaclev1.ContainerHealth) bool { return c.GetApplication() == f.app })
		if i < 0 {
			t.Fatalf("report lacks %s: %v", f.app, r)
		}
		return r.GetContainers()[i]
	}
	first := nextReport(t, reports, "session start")
	if c := app(first); c.GetState() != "running" || c.GetTaskId() != "t0" || !first.GetEngine().GetReachable() || first.GetEngine().GetVersion() == "" {
		t.Fatalf("first report: engine %v, %s %v", first.GetEngine(), f.app, c)
	}
	// Reports the subscription's first moments may add (none expected).
	for len(reports) > 0 {
		<-reports
	}

	start := time.Now()
	if err := f.api.ContainerKill(context.Background(), f.app, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	for {
		r := nextReport(t, reports, "after docker kill")
		if c := app(r); c.GetState() == "exited" {
			if c.GetExitCode() != 137 || c.GetTaskId() != "t0" {
				t.Errorf("killed container reported as %v", c)
			}
			t.Logf("docker kill -> health report: %s", time.Since(start))
			return
		}
	}
}

// The real engine behind a socket that stops answering: the target's
// report says unreachable within a heartbeat interval or two (each look
// waits docker.EngineTimeout), and reachable again once it answers.
func TestHealthReportsEngineHangAndRecovery(t *testing.T) {
	t.Parallel()
	real := testimage.RequireEngine(t)
	u, err := url.Parse(real.DaemonHost())
	if err != nil || u.Scheme != "unix" {
		t.Skipf("the engine is not on a unix socket (%s): the stalling proxy needs one", real.DaemonHost())
	}
	p, err := faultproxy.StartUnix(u.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	api, err := docker.NewClient(client.WithHost(p.DockerHost()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Close() })
	reports := healthSession(t, docker.New(api, nil, zaptest.NewLogger(t)), nil, 500*time.Millisecond, nil)

	awaitEngine := func(what string, reachable bool) *tentaclev1.EngineHealth {
		t.Helper()
		for {
			if e := nextReport(t, reports, what).GetEngine(); e.GetReachable() == reachable {
				return e
			}
		}
	}
	if e := awaitEngine("session start", true); e.GetVersion() == "" {
		t.Errorf("reachable engine reported without its version: %v", e)
	}
	p.Stall()
	if e := awaitEngine("engine hangs", false); e.GetError() == "" {
		t.Errorf("unreachable engine reported without the error: %v", e)
	}
	p.Heal()
	if e := awaitEngine("engine answers again", true); e.GetError() != "" || e.GetDiskTotalBytes() == 0 {
		t.Errorf("engine back reported as %v", e)
	}
}
