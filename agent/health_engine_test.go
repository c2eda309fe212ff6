package agent

import (
	"context"
	"slices"
	"testing"
	"time"

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
