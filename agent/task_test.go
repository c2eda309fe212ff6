package agent

import (
	"context"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/tentacle-deploy/tentacle/agent/docker"
	"github.com/tentacle-deploy/tentacle/agent/journal"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// holdingRunner is a Runner whose Deploys run until the test releases them
// (or their ctx ends), recording what ran at the same time.
type holdingRunner struct {
	mu      sync.Mutex
	release map[string]chan struct{} // per task
	running map[string]int           // per application
	overlap []string                 // applications seen running twice at once
	started chan string
}

func newHoldingRunner() *holdingRunner {
	return &holdingRunner{release: map[string]chan struct{}{}, running: map[string]int{}, started: make(chan string, 16)}
}

func (r *holdingRunner) gate(id string) chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.release[id] == nil {
		r.release[id] = make(chan struct{})
	}
	return r.release[id]
}

func (r *holdingRunner) Deploy(ctx context.Context, t docker.Task, progress func(docker.Progress), logs io.Writer) (docker.Result, error) {
	r.mu.Lock()
	r.running[t.Application]++
	if r.running[t.Application] > 1 {
		r.overlap = append(r.overlap, t.Application)
	}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.running[t.Application]--
		r.mu.Unlock()
	}()
	progress(docker.Progress{Phase: docker.PhasePulling, Message: "pulling", Bytes: 10, Total: 100})
	r.started <- t.ID
	select {
	case <-r.gate(t.ID):
		return docker.Result{Digest: testDigest, ContainerID: "c-" + t.ID}, nil
	case <-ctx.Done():
		return docker.Result{}, &docker.Failure{Kind: docker.FailureAgent, Err: ctx.Err()}
	}
}

func (r *holdingRunner) EngineVersion(context.Context) (string, error) { return "test", nil }

// Reconcile finds nothing: the holding runner creates no containers.
func (r *holdingRunner) Reconcile(context.Context, docker.Task, func(docker.Progress), io.Writer) (docker.Result, error) {
	return docker.Result{}, docker.ErrNotCreated
}

const testDigest = "sha256:2222222222222222222222222222222222222222222222222222222222222222"

// testAgent is an Agent with a journal and a runner, and no server: the
// tests hand it the server's messages through handle. Tasks still running
// when the test ends are cancelled.
func testAgent(t *testing.T, runner Runner) (*testAgentT, chan *tentaclev1.ConnectRequest) {
	t.Helper()
	j, err := journal.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := &Agent{journal: j, runner: runner, log: zaptest.NewLogger(t),
		appLocks: map[string]*sync.Mutex{}, cancels: map[string]context.CancelFunc{}}
	a.accepting.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(a.tasks.Wait)
	t.Cleanup(cancel) // runs first
	return &testAgentT{Agent: a, taskCtx: ctx}, make(chan *tentaclev1.ConnectRequest, 64)
}

type testAgentT struct {
	*Agent
	taskCtx context.Context
}

func assign(a *testAgentT, out chan *tentaclev1.ConnectRequest, taskID, app string) {
	a.handle(context.Background(), a.taskCtx, &tentaclev1.ConnectResponse{Msg: &tentaclev1.ConnectResponse_Assign{Assign: &tentaclev1.Assign{
		Task: &tentaclev1.TaskAssignment{TaskId: taskID, Application: app, ImageRepository: "registry.example.com/team/" + app, ImageDigest: testDigest},
	}}}, out)
}

// waitFinal waits for the task's final event.
func waitFinal(t *testing.T, a *testAgentT, taskID string) journal.Event {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		wake := a.journal.Wait()
		if ev := a.journal.EventsAfter(taskID, 0); len(ev) > 0 && ev[len(ev)-1].Final {
			return ev[len(ev)-1]
		}
		select {
		case <-wake:
		case <-deadline:
			t.Fatalf("task %s: no final event; events %+v", taskID, a.journal.EventsAfter(taskID, 0))
		}
	}
}

func TestCancelFromServerEndsTaskCancelled(t *testing.T) {
	t.Parallel()
	r := newHoldingRunner()
	a, out := testAgent(t, r)
	assign(a, out, "t1", "web")
	<-r.started
	a.handle(context.Background(), a.taskCtx, &tentaclev1.ConnectResponse{Msg: &tentaclev1.ConnectResponse_Cancel{Cancel: &tentaclev1.Cancel{TaskId: "t1", Reason: "cancelled by admin"}}}, out)
	final := waitFinal(t, a, "t1")
	if final.State != stateCancelled || final.FailureKind != string(docker.FailureAgent) || !strings.Contains(final.Message, "context canceled") {
		t.Errorf("final event = %+v, want state cancelled, kind agent", final)
	}
	if pe := eventToProto("t1", final); pe.GetState() != tentaclev1.TaskState_TASK_STATE_CANCELLED {
		t.Errorf("final event sent as %v, want TASK_STATE_CANCELLED", pe.GetState())
	}
	log, err := a.journal.ReadLog("t1", 0, 1<<16)
	if err != nil || !strings.Contains(string(log), "tentacle: cancelled: ") {
		t.Errorf("task log %q (%v) does not say it was cancelled", log, err)
	}
}

// Two tasks of one application never run at once on a target (their swaps
// would undo each other); another application's task is not held up.
func TestTasksOfOneApplicationDoNotOverlap(t *testing.T) {
	t.Parallel()
	r := newHoldingRunner()
	a, out := testAgent(t, r)
	assign(a, out, "web-1", "web")
	if got := <-r.started; got != "web-1" {
		t.Fatalf("started %s first, want web-1", got)
	}
	assign(a, out, "web-2", "web")
	assign(a, out, "api-1", "api")
	// api-1 runs while web-1 is held; web-2 must not have started.
	if got := <-r.started; got != "api-1" {
		t.Fatalf("started %s while web-1 runs, want api-1 (web-2 must wait)", got)
	}
	close(r.gate("api-1"))
	waitFinal(t, a, "api-1")
	select {
	case got := <-r.started:
		t.Fatalf("%s started while web-1 still runs", got)
	default:
	}
	close(r.gate("web-1"))
	if got := <-r.started; got != "web-2" {
		t.Fatalf("started %s, want web-2 after web-1", got)
	}
	close(r.gate("web-2"))
	for _, id := range []string{"web-1", "web-2", "api-1"} {
		if final := waitFinal(t, a, id); final.State != stateSucceeded {
			t.Errorf("task %s ended %+v, want succeeded", id, final)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.overlap) > 0 {
		t.Errorf("applications ran twice at once: %v", r.overlap)
	}
	accepted := 0
	for len(out) > 0 {
		if m := <-out; m.GetTaskAccepted() != nil {
			accepted++
		}
	}
	if accepted != 3 {
		t.Errorf("%d TaskAccepted sent, want 3", accepted)
	}
}

// Pull progress reaches the wire with its byte counts.
func TestProgressBytesAreReported(t *testing.T) {
	t.Parallel()
	r := newHoldingRunner()
	a, out := testAgent(t, r)
	assign(a, out, "t1", "web")
	<-r.started
	close(r.gate("t1"))
	waitFinal(t, a, "t1")
	evs := a.journal.EventsAfter("t1", 0)
	i := slices.IndexFunc(evs, func(e journal.Event) bool { return e.State == statePulling })
	if i < 0 {
		t.Fatalf("no pulling event in %+v", evs)
	}
	pe := eventToProto("t1", evs[i])
	if pe.GetProgressBytes() != 10 || pe.GetProgressTotalBytes() != 100 || pe.GetState() != tentaclev1.TaskState_TASK_STATE_PULLING {
		t.Errorf("pulling event on the wire = %v, want 10 of 100 bytes", pe)
	}
}
