package agent

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tentacle-deploy/tentacle/agent/docker"
	"github.com/tentacle-deploy/tentacle/agent/journal"
	"github.com/tentacle-deploy/tentacle/internal/version"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// observingRunner is a Runner and an Observer whose host the test sets:
// the seam between the health loop and Docker, whose side is tested in
// agent/docker against the real engine.
type observingRunner struct {
	*holdingRunner
	changes chan struct{}

	mu      sync.Mutex
	obs     docker.Observation
	calls   [][]string   // the apps of every Observe
	watches []chan error // the ended channel of every watch
}

func newObservingRunner() *observingRunner {
	return &observingRunner{holdingRunner: newHoldingRunner(), changes: make(chan struct{}, 16), obs: docker.Observation{
		Engine: docker.EngineHealth{Reachable: true, Version: "20.10.24", APIVersion: "1.41", RootDir: "/var/lib/docker", DiskFree: 40 << 30, DiskTotal: 100 << 30},
		Containers: []docker.ContainerHealth{{Application: "web", Name: "web", ID: "c1", State: "running", Health: "healthy",
			TaskID: "t0", ReleaseID: "r1", Image: "registry.example.com/team/web@" + testDigest, StartedAt: time.Unix(1700000000, 0)}},
	}}
}

func (r *observingRunner) Observe(_ context.Context, apps []string) docker.Observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, apps)
	o := r.obs
	o.Containers = slices.Clone(o.Containers)
	return o
}

func (r *observingRunner) WatchContainers(context.Context) (<-chan struct{}, <-chan error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ended := make(chan error, 1)
	r.watches = append(r.watches, ended)
	return r.changes, ended
}

func (r *observingRunner) set(change func(*docker.Observation)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	change(&r.obs)
}

func (r *observingRunner) observeCalls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

func (r *observingRunner) watchCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.watches)
}

// healthSession runs the agent's sessions against a server that welcomes
// it with apps and the heartbeat interval, and returns the health reports
// it receives.
func healthSession(t *testing.T, runner Runner, apps []string, heartbeat time.Duration, prepare func(*testAgentT)) <-chan *tentaclev1.HealthReport {
	t.Helper()
	a, _ := testAgent(t, runner)
	if prepare != nil {
		prepare(a)
	}
	reports := make(chan *tentaclev1.HealthReport, 64)
	srv := &scriptedServer{script: func(_ int, stream connectStream) error {
		if _, err := stream.Recv(); err != nil { // Hello
			return err
		}
		if err := stream.Send(&tentaclev1.ConnectResponse{Msg: &tentaclev1.ConnectResponse_Welcome{Welcome: &tentaclev1.Welcome{
			SessionId: "s", HeartbeatInterval: durationpb.New(heartbeat), Applications: apps}}}); err != nil {
			return err
		}
		for {
			m, err := stream.Recv()
			if err != nil {
				return err
			}
			if h := m.GetHealthReport(); h != nil {
				reports <- h
			}
		}
	}}
	connectAgent(t, a, serve(t, srv))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.sessionLoop(ctx, a.taskCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return reports
}

func nextReport(t *testing.T, reports <-chan *tentaclev1.HealthReport, what string) *tentaclev1.HealthReport {
	t.Helper()
	select {
	case r := <-reports:
		return r
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: no health report within 20s", what)
		return nil
	}
}

// noReport asserts that no report arrives for a while: the loop has
// nothing new to say.
func noReport(t *testing.T, reports <-chan *tentaclev1.HealthReport, what string) {
	t.Helper()
	select {
	case r := <-reports:
		t.Errorf("%s: unexpected health report %v", what, r)
	case <-time.After(time.Second):
	}
}

// The report right after Welcome covers the server's applications and the
// journal's; a burst of container events gives one new report; an event
// after which nothing changed gives none.
func TestHealthReportOnStartAndOnChange(t *testing.T) {
	t.Parallel()
	r := newObservingRunner()
	reports := healthSession(t, r, []string{"web"}, time.Hour, func(a *testAgentT) {
		if _, err := a.journal.Accept(journal.Assignment{TaskID: "t9", Application: "api"}); err != nil {
			t.Fatal(err)
		}
	})

	first := nextReport(t, reports, "session start")
	if first.GetSequence() == 0 || first.GetObservedAt() == nil || first.GetAgentVersion() != version.Version ||
		!first.GetAgentStartedAt().AsTime().Equal(processStart) {
		t.Errorf("first report header: seq %d observed %v version %q started %v", first.GetSequence(), first.GetObservedAt(), first.GetAgentVersion(), first.GetAgentStartedAt())
	}
	if e := first.GetEngine(); !e.GetReachable() || e.GetVersion() != "20.10.24" || e.GetApiVersion() != "1.41" ||
		e.GetRootDir() != "/var/lib/docker" || e.GetDiskFreeBytes() != 40<<30 || e.GetDiskTotalBytes() != 100<<30 {
		t.Errorf("first report engine = %v", e)
	}
	if c := first.GetContainers(); len(c) != 1 || c[0].GetApplication() != "web" || c[0].GetState() != "running" ||
		c[0].GetHealth() != "healthy" || c[0].GetTaskId() != "t0" || c[0].GetStartedAt().AsTime().Unix() != 1700000000 || c[0].GetFinishedAt() != nil {
		t.Errorf("first report containers = %v", c)
	}
	r.mu.Lock()
	apps := r.calls[0]
	r.mu.Unlock()
	if !slices.Equal(apps, []string{"api", "web"}) {
		t.Errorf("observed applications %q, want [api web] (Welcome's and the journal's)", apps)
	}

	calls := r.observeCalls()
	r.set(func(o *docker.Observation) {
		o.Containers[0].State, o.Containers[0].ExitCode, o.Containers[0].FinishedAt = "exited", 137, time.Unix(1700000100, 0)
	})
	for range 5 { // kill, die, stop… as one `docker kill` makes them
		r.changes <- struct{}{}
	}
	second := nextReport(t, reports, "after container events")
	if c := second.GetContainers(); len(c) != 1 || c[0].GetState() != "exited" || c[0].GetExitCode() != 137 {
		t.Errorf("report after the change: containers %v", c)
	}
	if second.GetSequence() <= first.GetSequence() {
		t.Errorf("sequence %d after %d: must increase", second.GetSequence(), first.GetSequence())
	}
	noReport(t, reports, "after one burst of events")
	if n := r.observeCalls() - calls; n != 1 {
		t.Errorf("a burst of 5 events made %d observations, want 1 (debounced)", n)
	}

	calls = r.observeCalls()
	r.changes <- struct{}{}
	for deadline := time.Now().Add(20 * time.Second); r.observeCalls() == calls; {
		if time.Now().After(deadline) {
			t.Fatal("an event was not followed by an observation")
		}
		time.Sleep(10 * time.Millisecond)
	}
	noReport(t, reports, "after an event that changed nothing")
}

// Losing the engine and getting it back are each reported within a
// heartbeat interval (no container event says so); ticks that find
// nothing new send nothing.
func TestHealthReportsEngineLostAndBack(t *testing.T) {
	t.Parallel()
	r := newObservingRunner()
	reports := healthSession(t, r, nil, 100*time.Millisecond, nil)
	if e := nextReport(t, reports, "session start").GetEngine(); !e.GetReachable() {
		t.Fatalf("first report engine = %v", e)
	}
	noReport(t, reports, "ten heartbeats with nothing new")

	saved := r.obs
	r.set(func(o *docker.Observation) {
		*o = docker.Observation{Engine: docker.EngineHealth{Error: "docker engine at unix:///var/run/docker.sock: context deadline exceeded"}}
	})
	lost := nextReport(t, reports, "engine lost")
	if e := lost.GetEngine(); e.GetReachable() || e.GetError() == "" || len(lost.GetContainers()) != 0 {
		t.Errorf("report after the engine was lost = %v", lost)
	}
	watches := r.watchCount()
	r.set(func(o *docker.Observation) { *o = saved })
	back := nextReport(t, reports, "engine back")
	if e := back.GetEngine(); !e.GetReachable() || e.GetError() != "" || len(back.GetContainers()) != 1 {
		t.Errorf("report after the engine came back = %v", back)
	}
	// The event stream of an engine that hung may hang too: it is
	// replaced when the engine answers again.
	if r.watchCount() <= watches {
		t.Errorf("no new event watch after the engine came back (%d watches)", r.watchCount())
	}
}

// When the event stream breaks, the agent looks again (events may be
// lost) and subscribes anew.
func TestHealthResubscribesWhenEventStreamEnds(t *testing.T) {
	t.Parallel()
	r := newObservingRunner()
	reports := healthSession(t, r, nil, time.Hour, nil)
	nextReport(t, reports, "session start")
	r.set(func(o *docker.Observation) { o.Containers[0].State = "restarting" })
	r.mu.Lock()
	r.watches[0] <- errors.New("unexpected EOF")
	r.mu.Unlock()
	if c := nextReport(t, reports, "after the stream ended").GetContainers(); len(c) != 1 || c[0].GetState() != "restarting" {
		t.Errorf("report after the stream ended: containers %v", c)
	}
	for deadline := time.Now().Add(20 * time.Second); r.watchCount() < 2; {
		if time.Now().After(deadline) {
			t.Fatal("no new event watch within 20s of the stream ending")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A runner that cannot observe (no Observer) still gets a report, with the
// engine from EngineVersion and no containers.
func TestHealthReportWithoutObserver(t *testing.T) {
	t.Parallel()
	reports := healthSession(t, newHoldingRunner(), []string{"web"}, time.Hour, nil)
	rep := nextReport(t, reports, "session start")
	if e := rep.GetEngine(); !e.GetReachable() || e.GetVersion() != "test" || len(rep.GetContainers()) != 0 {
		t.Errorf("report = %v, want a reachable engine version test and no containers", rep)
	}
}

func TestKeepDisk(t *testing.T) {
	t.Parallel()
	const total = 100 << 30
	eng := func(free, total uint64) *tentaclev1.EngineHealth {
		return &tentaclev1.EngineHealth{RootDir: "/var/lib/docker", DiskFreeBytes: free, DiskTotalBytes: total}
	}
	for _, tc := range []struct {
		name      string
		last, cur *tentaclev1.EngineHealth
		age       time.Duration
		keep      bool
	}{
		{"young figures kept even when they moved", eng(50<<30, total), eng(20<<30, total), time.Second, true},
		{"old, moved under 1%", eng(50<<30, total), eng(50<<30-total/200, total), time.Minute, true},
		{"old, moved 1%", eng(50<<30, total), eng(50<<30-total/100, total), time.Minute, false},
		{"old, grew 2%", eng(50<<30, total), eng(52<<30, total), time.Minute, false},
		{"full disk", eng(1<<20, total), eng(0, total), time.Second, false},
		{"became unknown", eng(50<<30, total), eng(0, 0), time.Second, false},
		{"became known", eng(0, 0), eng(50<<30, total), time.Second, false},
		{"another filesystem", eng(50<<30, total), eng(50<<30, 2*total), time.Second, false},
	} {
		if got := keepDisk(tc.last, tc.cur, tc.age); got != tc.keep {
			t.Errorf("%s: keepDisk = %v, want %v", tc.name, got, tc.keep)
		}
	}
}
