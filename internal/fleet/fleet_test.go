package fleet_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/tentacle-deploy/tentacle/agent/docker"
	"github.com/tentacle-deploy/tentacle/internal/fleet"
	"github.com/tentacle-deploy/tentacle/server"
	"github.com/tentacle-deploy/tentacle/server/store"
)

func TestFleetConnectsAndStops(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := server.New(ctx, server.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Out: io.Discard}, zaptest.NewLogger(t).Named("server"))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { srv.Serve(ctx); close(served) }()
	defer func() { cancel(); <-served }()
	if err := srv.Store().CreateEnvironment(ctx, store.Environment{Name: "load", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	const n = 3
	tok, _, err := srv.CreateJoinToken(ctx, "load", nil, time.Hour, n, "test")
	if err != nil {
		t.Fatal(err)
	}

	f, err := fleet.Start(ctx, fleet.Config{Server: srv.Addr(), JoinToken: tok.String(), Agents: n, Dir: t.TempDir(), Log: zaptest.NewLogger(t).Named("fleet")})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	waitFor(t, "every agent's session", func() bool { return f.Live() == n })
	targets, err := srv.Store().ListTargets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(targets) != n || f.Size() != n || f.Running() != n {
		t.Fatalf("%d targets enrolled, fleet size %d, %d running; want %d of each", len(targets), f.Size(), f.Running(), n)
	}

	f.Stop()
	if f.Live() != 0 || f.Running() != 0 {
		t.Fatalf("after Stop: %d live, %d running; want none", f.Live(), f.Running())
	}
	f.Stop() // a second Stop is harmless
}

func TestStartRejectsAnEmptyFleet(t *testing.T) {
	t.Parallel()
	_, err := fleet.Start(context.Background(), fleet.Config{Server: "127.0.0.1:1", Agents: 0})
	if err == nil || err.Error() != "fleet: 0 agents: want at least one" {
		t.Fatalf("Start with no agents: %v", err)
	}
}

func TestEngineCountsRunsPerTask(t *testing.T) {
	t.Parallel()
	e := fleet.NewEngine()
	var phases []docker.Phase
	var logs strings.Builder
	for _, id := range []string{"t1", "t2", "t1"} {
		res, err := e.Deploy(context.Background(), docker.Task{ID: id, Application: "web"}, func(p docker.Progress) { phases = append(phases, p.Phase) }, &logs)
		if err != nil || res.Digest != fleet.Digest || res.ContainerID != "sim-"+id {
			t.Fatalf("Deploy(%s) = %+v, %v", id, res, err)
		}
	}
	if e.Runs("t1") != 2 || e.Runs("t2") != 1 || e.Runs("t3") != 0 || len(e.AllRuns()) != 2 {
		t.Fatalf("runs = %v", e.AllRuns())
	}
	if len(phases) != 9 || phases[0] != docker.PhasePulling || phases[2] != docker.PhaseVerifying {
		t.Fatalf("progress phases = %v", phases)
	}
	if !strings.Contains(logs.String(), "simulated container of web started\n") {
		t.Fatalf("logs = %q", logs.String())
	}
}

// waitFor polls cond with a generous deadline: a loaded CI machine is slow,
// and nothing here measures speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
