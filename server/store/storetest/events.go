package storetest

import (
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/server/store"
)

var eventTests = []namedTest{
	{"AppendTaskEvent", testAppendTaskEvent},
	{"AppendTaskEventReplay", testAppendTaskEventReplay},
	{"AppendTaskEventOutOfOrder", testAppendTaskEventOutOfOrder},
	{"AppendTaskEventAfterTerminal", testAppendTaskEventAfterTerminal},
	{"AppendTaskEventFinishesDeployment", testAppendTaskEventFinishesDeployment},
	{"ListDeploymentEvents", testListDeploymentEvents},
}

func testAppendTaskEvent(t *testing.T, s store.Store) {
	f := newFixture(t, s, 1)
	f.deploy(t, "dep-1", t0, f.targets[0])
	id := taskID("dep-1", f.targets[0])

	pull := store.TaskEvent{TaskID: id, Sequence: 1, State: store.TaskPulling, Message: "pulling",
		ImageDigest: digestA, OccurredAt: at(time.Second)}
	isNew, err := s.AppendTaskEvent(f.ctx, pull)
	must(t, err)
	wantEqual(t, "new", isNew, true)
	tk := f.task(t, id)
	wantEqual(t, "task after pull", [4]any{tk.State, tk.Message, tk.ImageDigest, tk.LastEventSeq},
		[4]any{store.TaskPulling, "pulling", digestA, uint64(1)})
	if tk.UpdatedAt.Before(tk.CreatedAt) {
		t.Errorf("UpdatedAt %v before CreatedAt %v", tk.UpdatedAt, tk.CreatedAt)
	}

	// A progress event with no state, digest or container keeps the task's.
	progress := store.TaskEvent{TaskID: id, Sequence: 2, Message: "50%", OccurredAt: at(2 * time.Second)}
	_, err = s.AppendTaskEvent(f.ctx, progress)
	must(t, err)
	tk = f.task(t, id)
	wantEqual(t, "task after progress", [4]any{tk.State, tk.Message, tk.ImageDigest, tk.LastEventSeq},
		[4]any{store.TaskPulling, "50%", digestA, uint64(2)})

	start := store.TaskEvent{TaskID: id, Sequence: 3, State: store.TaskStarting, ContainerID: "c0ffee", OccurredAt: at(3 * time.Second)}
	_, err = s.AppendTaskEvent(f.ctx, start)
	must(t, err)
	wantEqual(t, "running task's final log bytes", f.task(t, id).FinalLogBytes, int64(-1))

	fail := store.TaskEvent{TaskID: id, Sequence: 4, State: store.TaskFailed, Message: "health check failed",
		FailureKind: "unhealthy", LogBytes: 1234, OccurredAt: at(4 * time.Second)}
	_, err = s.AppendTaskEvent(f.ctx, fail)
	must(t, err)
	tk = f.task(t, id)
	wantEqual(t, "failed task", [7]any{tk.State, tk.Message, tk.FailureKind, tk.ImageDigest, tk.ContainerID, tk.LastEventSeq, tk.FinalLogBytes},
		[7]any{store.TaskFailed, "health check failed", "unhealthy", digestA, "c0ffee", uint64(4), int64(1234)})

	es, err := s.ListDeploymentEvents(f.ctx, "dep-1", 0)
	must(t, err)
	for i := range es {
		es[i].ID = 0 // checked by ListDeploymentEvents
	}
	wantEqual(t, "stored events", es, []store.TaskEvent{pull, progress, start, fail})

	_, err = s.AppendTaskEvent(f.ctx, store.TaskEvent{TaskID: "task-nope", Sequence: 1, State: store.TaskPulling})
	wantErr(t, err, store.ErrNotFound, `"task-nope"`)
}

func testAppendTaskEventReplay(t *testing.T, s store.Store) {
	f := newFixture(t, s, 1)
	f.deploy(t, "dep-1", t0, f.targets[0])
	id := taskID("dep-1", f.targets[0])
	f.event(t, id, 1, store.TaskPulling)
	f.event(t, id, 2, store.TaskStarting)
	before := f.task(t, id)

	// A resent event, even one whose content differs, is not stored twice
	// and changes nothing.
	for _, e := range []store.TaskEvent{
		{TaskID: id, Sequence: 2, State: store.TaskStarting, OccurredAt: t0},
		{TaskID: id, Sequence: 2, State: store.TaskFailed, Message: "other"},
		{TaskID: id, Sequence: 1, State: store.TaskPulling, OccurredAt: t0},
	} {
		isNew, err := s.AppendTaskEvent(f.ctx, e)
		must(t, err)
		wantEqual(t, "replay is new", isNew, false)
	}
	wantEqual(t, "task after replays", f.task(t, id), before)
	es, err := s.ListDeploymentEvents(f.ctx, "dep-1", 0)
	must(t, err)
	wantEqual(t, "events after replays", len(es), 2)
}

func testAppendTaskEventOutOfOrder(t *testing.T, s store.Store) {
	f := newFixture(t, s, 1)
	f.deploy(t, "dep-1", t0, f.targets[0])
	id := taskID("dep-1", f.targets[0])
	f.event(t, id, 3, store.TaskStarting)
	// Older events arriving late are stored but do not move the task back.
	f.event(t, id, 1, store.TaskAccepted)
	f.event(t, id, 2, store.TaskPulling)
	tk := f.task(t, id)
	wantEqual(t, "state and sequence", [2]any{tk.State, tk.LastEventSeq}, [2]any{store.TaskStarting, uint64(3)})
	es, err := s.ListDeploymentEvents(f.ctx, "dep-1", 0)
	must(t, err)
	wantEqual(t, "events in arrival order", ids(es, func(e store.TaskEvent) string { return string(e.State) }),
		[]string{"starting", "accepted", "pulling"})
}

func testAppendTaskEventAfterTerminal(t *testing.T, s store.Store) {
	f := newFixture(t, s, 1)
	d := f.deploy(t, "dep-1", t0, f.targets[0])
	id := taskID("dep-1", f.targets[0])
	f.event(t, id, 1, store.TaskCancelled)
	before, dBefore := f.task(t, id), f.deployment(t, d.ID)
	// A terminal task stays as it is, whatever follows.
	f.event(t, id, 2, store.TaskSucceeded)
	f.event(t, id, 3, store.TaskPulling)
	wantEqual(t, "task after late events", f.task(t, id), before)
	wantEqual(t, "deployment after late events", f.deployment(t, d.ID), dBefore)
}

func testAppendTaskEventFinishesDeployment(t *testing.T, s store.Store) {
	cases := []struct {
		name   string
		finals []store.TaskState
		want   store.DeploymentState
	}{
		{"all succeeded", []store.TaskState{store.TaskSucceeded, store.TaskSucceeded, store.TaskSucceeded}, store.DeploymentSucceeded},
		{"one failed", []store.TaskState{store.TaskSucceeded, store.TaskFailed, store.TaskSucceeded}, store.DeploymentFailed},
		{"one cancelled", []store.TaskState{store.TaskCancelled, store.TaskSucceeded, store.TaskSucceeded}, store.DeploymentFailed},
		{"the first failed", []store.TaskState{store.TaskFailed, store.TaskSucceeded, store.TaskSucceeded}, store.DeploymentFailed},
	}
	f := newFixture(t, s, 3)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dep := string(rune('a'+i)) + "-dep"
			f.deploy(t, dep, at(time.Duration(i)*time.Minute), f.targets...)
			for j, final := range c.finals {
				id := taskID(dep, f.targets[j])
				f.event(t, id, 1, store.TaskPulling)
				if d := f.deployment(t, dep); d.State != store.DeploymentRunning || !d.FinishedAt.IsZero() {
					t.Fatalf("deployment %s/%v with a task still running", d.State, d.FinishedAt)
				}
				f.event(t, id, 2, final)
			}
			d := f.deployment(t, dep)
			if d.State != c.want || d.FinishedAt.IsZero() {
				t.Errorf("deployment %s finished at %v, want %s and a time", d.State, d.FinishedAt, c.want)
			}
		})
	}
}

func testListDeploymentEvents(t *testing.T, s store.Store) {
	f := newFixture(t, s, 2)
	f.deploy(t, "dep-1", t0, f.targets...)
	f.deploy(t, "dep-2", at(time.Minute), f.targets[0])
	a, b, other := taskID("dep-1", f.targets[0]), taskID("dep-1", f.targets[1]), taskID("dep-2", f.targets[0])
	f.event(t, a, 1, store.TaskPulling)
	f.event(t, other, 1, store.TaskPulling)
	f.event(t, b, 1, store.TaskPulling)
	f.event(t, a, 2, store.TaskStarting)
	f.event(t, b, 2, store.TaskStarting)

	key := func(e store.TaskEvent) string { return e.TaskID + "#" + string(e.State) }
	es, err := s.ListDeploymentEvents(f.ctx, "dep-1", 0)
	must(t, err)
	wantEqual(t, "dep-1 events", ids(es, key),
		[]string{a + "#pulling", b + "#pulling", a + "#starting", b + "#starting"})
	for i := 1; i < len(es); i++ {
		if es[i].ID <= es[i-1].ID {
			t.Fatalf("event IDs not increasing: %d then %d", es[i-1].ID, es[i].ID)
		}
	}
	rest, err := s.ListDeploymentEvents(f.ctx, "dep-1", es[1].ID)
	must(t, err)
	wantEqual(t, "events after the second", ids(rest, key), []string{a + "#starting", b + "#starting"})
	rest, err = s.ListDeploymentEvents(f.ctx, "dep-1", es[3].ID)
	must(t, err)
	wantEqual(t, "events after the last", len(rest), 0)

	f.event(t, b, 3, store.TaskSucceeded)
	rest, err = s.ListDeploymentEvents(f.ctx, "dep-1", es[3].ID)
	must(t, err)
	wantEqual(t, "a new event after the cursor", ids(rest, key), []string{b + "#succeeded"})

	_, err = s.ListDeploymentEvents(f.ctx, "dep-nope", 0)
	wantErr(t, err, store.ErrNotFound, `"dep-nope"`)
}
