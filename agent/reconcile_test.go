package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/tentacle-deploy/tentacle/agent/docker"
	"github.com/tentacle-deploy/tentacle/agent/journal"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// hostRunner answers Reconcile with what a host holds and counts Deploys.
type hostRunner struct {
	reconciled docker.Result
	reconcile  error
	mu         sync.Mutex
	deploys    map[string]int
}

func (r *hostRunner) Deploy(_ context.Context, t docker.Task, _ func(docker.Progress), _ io.Writer) (docker.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deploys[t.ID]++
	return docker.Result{Digest: testDigest, ContainerID: "c-" + t.ID}, nil
}

func (r *hostRunner) Reconcile(context.Context, docker.Task, func(docker.Progress), io.Writer) (docker.Result, error) {
	return r.reconciled, r.reconcile
}

func (r *hostRunner) EngineVersion(context.Context) (string, error) { return "test", nil }

// An agent restarted with an unfinished task settles it from what Docker
// holds and the journal's last event; it never deploys a task that may
// have created its container.
func TestRestartReconcilesUnfinishedTasks(t *testing.T) {
	t.Parallel()
	interrupted := &docker.Failure{Kind: docker.FailureInterrupted, Err: errors.New("the agent restarted during the task and rolled it back: web runs its previous container again")}
	for _, tc := range []struct {
		name       string
		events     []string // journaled before the "crash"
		reconciled docker.Result
		reconcile  error
		deploys    int
		state      string
		kind       tentaclev1.FailureKind
		message    string
	}{
		{"accepted, nothing done: runs now", nil, docker.Result{}, docker.ErrNotCreated, 1, stateSucceeded, 0, "running " + testDigest},
		{"pulling: runs now", []string{statePulling}, docker.Result{}, docker.ErrNotCreated, 1, stateSucceeded, 0, "running " + testDigest},
		{"started, container gone: not run again", []string{statePulling, stateStarting}, docker.Result{}, docker.ErrNotCreated, 0, stateFailed,
			tentaclev1.FailureKind_FAILURE_KIND_INTERRUPTED, "the agent restarted during the task and its new container is gone (rolled back): the previous container, if any, runs; deploy again"},
		{"swap unfinished: rolled back", []string{statePulling, stateStarting}, docker.Result{Digest: testDigest}, interrupted, 0, stateFailed,
			tentaclev1.FailureKind_FAILURE_KIND_INTERRUPTED, interrupted.Error()},
		{"gate resumed and passed", []string{statePulling, stateStarting, stateVerifying}, docker.Result{Digest: testDigest, ContainerID: "c-resumed"}, nil, 0, stateSucceeded, 0, "running " + testDigest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &hostRunner{reconciled: tc.reconciled, reconcile: tc.reconcile, deploys: map[string]int{}}
			a, out := testAgent(t, r)
			if _, err := a.journal.Accept(journal.Assignment{TaskID: "t1", Application: "web", ImageRepository: "registry.example.com/team/web", ImageDigest: testDigest}); err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.events {
				if _, err := a.journal.Append("t1", journal.Event{State: s}); err != nil {
					t.Fatal(err)
				}
			}
			a.reconcile(a.taskCtx)
			// The server redelivers the task on the new session: held, not run again.
			assign(a, out, "t1", "web")
			final := waitFinal(t, a, "t1")
			a.tasks.Wait()
			pe := eventToProto("t1", final)
			if final.State != tc.state || pe.GetFailureKind() != tc.kind || final.Message != tc.message {
				t.Errorf("final event = %+v (kind on the wire %v), want state %s kind %v message %q", final, pe.GetFailureKind(), tc.state, tc.kind, tc.message)
			}
			if n := r.deploys["t1"]; n != tc.deploys {
				t.Errorf("Deploy ran %d times, want %d", n, tc.deploys)
			}
			log, _ := a.journal.ReadLog("t1", 0, 1<<16)
			if !strings.Contains(string(log), "tentacle: the agent restarted during this task") {
				t.Errorf("task log does not say the agent restarted:\n%s", log)
			}
		})
	}
}

// An agent stopped while it still waits for Docker to settle a task
// reports nothing: the outcome is unknown, the next start settles it.
func TestStopBeforeDockerAnswersLeavesTaskUnfinished(t *testing.T) {
	t.Parallel()
	r := &hostRunner{reconcile: &docker.Failure{Kind: docker.FailureDocker, Err: fmt.Errorf("settle task t1: %w: %w", docker.ErrEngineUnreachable, context.Canceled)}, deploys: map[string]int{}}
	a, _ := testAgent(t, r)
	if _, err := a.journal.Accept(journal.Assignment{TaskID: "t1", Application: "web", ImageRepository: "registry.example.com/team/web", ImageDigest: testDigest}); err != nil {
		t.Fatal(err)
	}
	a.journal.Append("t1", journal.Event{State: stateStarting})
	a.reconcile(a.taskCtx)
	a.tasks.Wait()
	if u := a.journal.Unfinished(); len(u) != 1 || u[0].TaskID != "t1" {
		t.Fatalf("unfinished tasks = %v, want t1 still unfinished", u)
	}
	if n := r.deploys["t1"]; n != 0 {
		t.Errorf("Deploy ran %d times", n)
	}
}
