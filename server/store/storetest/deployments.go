package storetest

import (
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/server/store"
)

var deploymentTests = []namedTest{
	{"CreateDeployment", testCreateDeployment},
	{"CreateDeploymentRejected", testCreateDeploymentRejected},
	{"GetDeployment", testGetDeployment},
	{"ListDeployments", testListDeployments},
	{"GetTask", testGetTask},
	{"ListTasks", testListTasks},
	{"PendingTasksForTarget", testPendingTasksForTarget},
	{"MarkTaskAssigned", testMarkTaskAssigned},
	{"MarkTaskAccepted", testMarkTaskAccepted},
	{"ReleaseSucceededIn", testReleaseSucceededIn},
}

func testReleaseSucceededIn(t *testing.T, s store.Store) {
	f := newFixture(t, s, 2)
	succeeded := func() bool {
		ok, err := s.ReleaseSucceededIn(f.ctx, f.release.ID, "prod")
		must(t, err)
		return ok
	}
	f.deploy(t, "dep-1", at(time.Hour), f.targets...)
	if succeeded() {
		t.Fatal("a running deployment counts as succeeded")
	}
	f.event(t, taskID("dep-1", f.targets[0]), 1, store.TaskSucceeded)
	f.event(t, taskID("dep-1", f.targets[1]), 1, store.TaskFailed)
	if succeeded() {
		t.Fatal("a failed deployment counts as succeeded")
	}
	f.deploy(t, "dep-2", at(2*time.Hour), f.targets...)
	f.event(t, taskID("dep-2", f.targets[0]), 1, store.TaskSucceeded)
	f.event(t, taskID("dep-2", f.targets[1]), 1, store.TaskSucceeded)
	if !succeeded() {
		t.Fatal("a succeeded deployment is not seen")
	}
	if ok, err := s.ReleaseSucceededIn(f.ctx, f.release.ID, "dev"); err != nil || ok {
		t.Fatalf("in dev: %v, %v; want false", ok, err)
	}
}

func testCreateDeployment(t *testing.T, s store.Store) {
	f := newFixture(t, s, 2)
	d := store.Deployment{ID: "dep-1", ReleaseID: "rel-1", Environment: "prod", CreatedBy: "alice", CreatedAt: at(time.Hour)}
	tasks := []store.Task{
		{ID: "task-b", DeploymentID: "dep-1", TargetID: f.targets[1].ID},
		{ID: "task-a", TargetID: f.targets[0].ID}, // DeploymentID may be left to the store
	}
	must(t, s.CreateDeployment(f.ctx, d, tasks))

	got := f.deployment(t, "dep-1")
	want := d
	want.Application, want.ReleaseVersion, want.State, want.Kind = "web", "1.0.0", store.DeploymentRunning, store.KindDeploy
	wantEqual(t, "deployment", got, want)

	ts, err := s.ListTasks(f.ctx, "dep-1")
	must(t, err)
	wantEqual(t, "tasks", ts, []store.Task{
		{ID: "task-a", DeploymentID: "dep-1", TargetID: f.targets[0].ID, TargetName: "host-00", State: store.TaskQueued,
			FinalLogBytes: -1, Wave: 1, CreatedAt: at(time.Hour), UpdatedAt: at(time.Hour)},
		{ID: "task-b", DeploymentID: "dep-1", TargetID: f.targets[1].ID, TargetName: "host-01", State: store.TaskQueued,
			FinalLogBytes: -1, Wave: 1, CreatedAt: at(time.Hour), UpdatedAt: at(time.Hour)},
	})
}

// testCreateDeploymentRejected checks each rejection and that a rejected
// deployment leaves nothing behind: it and its tasks are one transaction.
func testCreateDeploymentRejected(t *testing.T, s store.Store) {
	f := newFixture(t, s, 2)
	f.deploy(t, "dep-1", t0, f.targets[0])
	ok := store.Deployment{ID: "dep-2", ReleaseID: "rel-1", Environment: "prod"}
	task := func(id, target string) store.Task { return store.Task{ID: id, TargetID: target} }
	cases := []struct {
		name  string
		d     store.Deployment
		tasks []store.Task
		err   error
		names []string
	}{
		{"deployment ID taken", store.Deployment{ID: "dep-1", ReleaseID: "rel-1", Environment: "prod"},
			[]store.Task{task("new-task", f.targets[1].ID)}, store.ErrConflict, []string{`"dep-1"`}},
		{"unknown release", store.Deployment{ID: "dep-2", ReleaseID: "rel-nope", Environment: "prod"},
			nil, store.ErrNotFound, []string{`"rel-nope"`}},
		{"unknown environment", store.Deployment{ID: "dep-2", ReleaseID: "rel-1", Environment: "nope"},
			nil, store.ErrNotFound, []string{`"nope"`}},
		{"unknown target", ok, []store.Task{task("t1", f.targets[0].ID), task("t2", "tgt-nope")},
			store.ErrNotFound, []string{`"tgt-nope"`}},
		{"task ID taken", ok, []store.Task{task("t1", f.targets[0].ID), task(taskID("dep-1", f.targets[0]), f.targets[1].ID)},
			store.ErrConflict, nil},
		{"two tasks on one target", ok, []store.Task{task("t1", f.targets[0].ID), task("t2", f.targets[0].ID)},
			store.ErrConflict, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantErr(t, s.CreateDeployment(f.ctx, c.d, c.tasks), c.err, c.names...)
			if c.d.ID != "dep-1" {
				_, err := s.GetDeployment(f.ctx, c.d.ID)
				wantErr(t, err, store.ErrNotFound)
			}
			for _, tk := range c.tasks {
				if _, err := s.GetTask(f.ctx, tk.ID); err == nil && tk.ID != taskID("dep-1", f.targets[0]) {
					t.Errorf("task %s of the rejected deployment was stored", tk.ID)
				}
			}
		})
	}
	ts, err := s.ListTasks(f.ctx, "")
	must(t, err)
	wantEqual(t, "tasks after the rejections", ids(ts, func(t store.Task) string { return t.ID }),
		[]string{taskID("dep-1", f.targets[0])})
}

func testGetDeployment(t *testing.T, s store.Store) {
	f := newFixture(t, s, 1)
	f.deploy(t, "dep-1", at(time.Minute), f.targets[0])
	got, err := s.GetDeployment(f.ctx, "dep-1")
	must(t, err)
	wantEqual(t, "deployment", got, store.Deployment{ID: "dep-1", ReleaseID: "rel-1", Application: "web",
		ReleaseVersion: "1.0.0", Environment: "prod", State: store.DeploymentRunning, CreatedBy: "alice",
		CreatedAt: at(time.Minute), Kind: store.KindDeploy})
	_, err = s.GetDeployment(f.ctx, "dep-nope")
	wantErr(t, err, store.ErrNotFound, `"dep-nope"`)
}

func testListDeployments(t *testing.T, s store.Store) {
	f := newFixture(t, s, 0)
	must(t, s.CreateApplication(f.ctx, store.Application{Name: "api", ImageRepository: "team/api"}))
	must(t, s.CreateRelease(f.ctx, store.Release{ID: "rel-api", Application: "api", Version: "7", ImageTag: "7"}))
	for _, d := range []store.Deployment{
		{ID: "d1", ReleaseID: "rel-1", Environment: "dev", CreatedAt: at(1 * time.Minute)},
		{ID: "d3", ReleaseID: "rel-1", Environment: "prod", CreatedAt: at(3 * time.Minute)},
		{ID: "d2", ReleaseID: "rel-api", Environment: "dev", CreatedAt: at(2 * time.Minute)},
		{ID: "d4", ReleaseID: "rel-api", Environment: "prod", CreatedAt: at(4 * time.Minute)},
	} {
		must(t, s.CreateDeployment(f.ctx, d, nil))
	}
	cases := []struct {
		filter store.DeploymentFilter
		want   []string
	}{
		{store.DeploymentFilter{}, []string{"d4", "d3", "d2", "d1"}},
		{store.DeploymentFilter{Application: "web"}, []string{"d3", "d1"}},
		{store.DeploymentFilter{Environment: "dev"}, []string{"d2", "d1"}},
		{store.DeploymentFilter{Application: "api", Environment: "prod"}, []string{"d4"}},
		{store.DeploymentFilter{Limit: 3}, []string{"d4", "d3", "d2"}},
		{store.DeploymentFilter{Environment: "prod", Limit: 1}, []string{"d4"}},
		{store.DeploymentFilter{Application: "nope"}, []string{}},
	}
	for _, c := range cases {
		ds, err := s.ListDeployments(f.ctx, c.filter)
		must(t, err)
		wantEqual(t, "deployments", ids(ds, func(d store.Deployment) string { return d.ID }), c.want)
	}
}

func testGetTask(t *testing.T, s store.Store) {
	f := newFixture(t, s, 1)
	f.deploy(t, "dep-1", at(time.Minute), f.targets[0])
	id := taskID("dep-1", f.targets[0])
	got, err := s.GetTask(f.ctx, id)
	must(t, err)
	wantEqual(t, "task", got, store.Task{ID: id, DeploymentID: "dep-1", TargetID: f.targets[0].ID,
		TargetName: "host-00", State: store.TaskQueued, FinalLogBytes: -1, Wave: 1,
		CreatedAt: at(time.Minute), UpdatedAt: at(time.Minute)})
	_, err = s.GetTask(f.ctx, "task-nope")
	wantErr(t, err, store.ErrNotFound, `"task-nope"`)
}

func testListTasks(t *testing.T, s store.Store) {
	f := newFixture(t, s, 3)
	// Names sort host-00 < host-01 < host-02; task IDs are given in another order.
	must(t, s.CreateDeployment(f.ctx, store.Deployment{ID: "dep-1", ReleaseID: "rel-1", Environment: "prod", CreatedAt: t0},
		[]store.Task{
			{ID: "a", TargetID: f.targets[2].ID},
			{ID: "b", TargetID: f.targets[0].ID},
			{ID: "c", TargetID: f.targets[1].ID},
		}))
	f.deploy(t, "dep-2", at(time.Minute), f.targets[1])
	byID := func(t store.Task) string { return t.ID }
	ts, err := s.ListTasks(f.ctx, "dep-1")
	must(t, err)
	wantEqual(t, "tasks of dep-1 by target name", ids(ts, byID), []string{"b", "c", "a"})
	wantEqual(t, "target names", ids(ts, func(t store.Task) string { return t.TargetName }),
		[]string{"host-00", "host-01", "host-02"})
	ts, err = s.ListTasks(f.ctx, "")
	must(t, err)
	if len(ts) != 4 || ts[0].ID != taskID("dep-2", f.targets[1]) {
		t.Errorf("all tasks = %v, want 4, newest (dep-2's) first", ids(ts, byID))
	}
	must(t, s.CreateDeployment(f.ctx, store.Deployment{ID: "dep-empty", ReleaseID: "rel-1", Environment: "prod"}, nil))
	ts, err = s.ListTasks(f.ctx, "dep-empty")
	must(t, err)
	wantEqual(t, "tasks of a deployment without any", len(ts), 0)
	_, err = s.ListTasks(f.ctx, "dep-nope")
	wantErr(t, err, store.ErrNotFound, `"dep-nope"`)
}

func testPendingTasksForTarget(t *testing.T, s store.Store) {
	f := newFixture(t, s, 2)
	tg := f.targets[0]
	for i, id := range []string{"d1", "d2", "d3", "d4", "d5"} {
		f.deploy(t, id, at(time.Duration(i)*time.Minute), tg, f.targets[1])
	}
	must(t, s.MarkTaskAssigned(f.ctx, taskID("d2", tg))) // assigned: pending
	must(t, s.MarkTaskAccepted(f.ctx, taskID("d3", tg))) // accepted: the agent has it
	f.event(t, taskID("d4", tg), 1, store.TaskSucceeded) // finished
	ts, err := s.PendingTasksForTarget(f.ctx, tg.ID)
	must(t, err)
	wantEqual(t, "pending tasks, oldest first", ids(ts, func(t store.Task) string { return t.ID }),
		[]string{taskID("d1", tg), taskID("d2", tg), taskID("d5", tg)})

	must(t, s.CreateJoinToken(f.ctx, joinToken("tok", "prod", 1)))
	idle, err := s.EnrollTarget(f.ctx, "tok", hash("secret-tok"), at(time.Minute), store.Target{ID: "idle", Name: "idle"})
	must(t, err)
	ts, err = s.PendingTasksForTarget(f.ctx, idle.ID)
	must(t, err)
	wantEqual(t, "pending tasks of an idle target", len(ts), 0)
	_, err = s.PendingTasksForTarget(f.ctx, "tgt-nope")
	wantErr(t, err, store.ErrNotFound, `"tgt-nope"`)
}

// moveCase is a task brought to state from by events, and the state it must
// be in after a Mark call.
type moveCase struct {
	from, want store.TaskState
}

func testMark(t *testing.T, s store.Store, mark func(f *fixture, id string) error, cases []moveCase) {
	f := newFixture(t, s, len(cases))
	f.deploy(t, "dep-1", t0, f.targets...)
	for i, c := range cases {
		id := taskID("dep-1", f.targets[i])
		switch c.from {
		case store.TaskQueued:
		case store.TaskAssigned:
			must(t, s.MarkTaskAssigned(f.ctx, id))
		default:
			f.event(t, id, 1, c.from)
		}
		before := f.task(t, id)
		must(t, mark(f, id))
		must(t, mark(f, id)) // a repeat is harmless
		got := f.task(t, id)
		if got.State != c.want {
			t.Errorf("from %s: state %s, want %s", c.from, got.State, c.want)
		}
		if c.from == c.want && !got.UpdatedAt.Equal(before.UpdatedAt) {
			t.Errorf("from %s: UpdatedAt changed from %v to %v for a no-op", c.from, before.UpdatedAt, got.UpdatedAt)
		}
		if c.from != c.want && got.UpdatedAt.Before(before.UpdatedAt) {
			t.Errorf("from %s: UpdatedAt went back from %v to %v", c.from, before.UpdatedAt, got.UpdatedAt)
		}
	}
	wantErr(t, mark(f, "task-nope"), store.ErrNotFound, `"task-nope"`)
}

func testMarkTaskAssigned(t *testing.T, s store.Store) {
	testMark(t, s, func(f *fixture, id string) error { return f.s.MarkTaskAssigned(f.ctx, id) }, []moveCase{
		{store.TaskQueued, store.TaskAssigned},
		{store.TaskAssigned, store.TaskAssigned},
		{store.TaskAccepted, store.TaskAccepted},
		{store.TaskPulling, store.TaskPulling},
		{store.TaskSucceeded, store.TaskSucceeded},
		{store.TaskCancelled, store.TaskCancelled},
	})
}

func testMarkTaskAccepted(t *testing.T, s store.Store) {
	testMark(t, s, func(f *fixture, id string) error { return f.s.MarkTaskAccepted(f.ctx, id) }, []moveCase{
		{store.TaskQueued, store.TaskAccepted},
		{store.TaskAssigned, store.TaskAccepted},
		{store.TaskAccepted, store.TaskAccepted},
		{store.TaskPulling, store.TaskPulling}, // the accept arrived after a later event
		{store.TaskVerifying, store.TaskVerifying},
		{store.TaskFailed, store.TaskFailed},
	})
}
