package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/server/store"
)

var rolloutTests = []namedTest{
	{"EnvironmentSettings", testEnvironmentSettings},
	{"UpdateEnvironment", testUpdateEnvironment},
	{"ApplicationRollout", testApplicationRollout},
	{"DeploymentRolloutAndKind", testDeploymentRolloutAndKind},
	{"StartWave", testStartWave},
	{"HaltDeployment", testHaltDeployment},
	{"HaltFinishesDeployment", testHaltFinishesDeployment},
	{"RequestCancelDeployment", testRequestCancelDeployment},
	{"CancelledDeploymentEndsCancelled", testCancelledDeploymentEndsCancelled},
	{"ListRunningDeployments", testListRunningDeployments},
	{"TaskProgress", testTaskProgress},
	{"ReleaseSucceededInRequiredTargets", testReleaseSucceededInRequiredTargets},
	{"DeploymentDeadline", testDeploymentDeadline},
	{"FailOverdueTasks", testFailOverdueTasks},
	{"FailOverdueTasksFinishesDeployment", testFailOverdueTasksFinishesDeployment},
}

func testEnvironmentSettings(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateEnvironment(ctx, store.Environment{Name: "prod", AutoDeploy: true, RequiredTargets: 3, CreatedAt: t0}))
	got, err := s.GetEnvironment(ctx, "prod")
	must(t, err)
	wantEqual(t, "environment", got, store.Environment{Name: "prod", CreatedAt: t0, Position: 1, AutoDeploy: true, RequiredTargets: 3})
}

func testUpdateEnvironment(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateEnvironment(ctx, store.Environment{Name: "dev", CreatedAt: t0}))
	must(t, s.CreateEnvironment(ctx, store.Environment{Name: "prod", Description: "live", CreatedAt: t0}))
	on, two := true, 2
	got, err := s.UpdateEnvironment(ctx, "prod", store.EnvironmentUpdate{AutoDeploy: &on, RequiredTargets: &two})
	must(t, err)
	want := store.Environment{Name: "prod", Description: "live", CreatedAt: t0, Position: 2, AutoDeploy: true, RequiredTargets: 2}
	wantEqual(t, "updated environment", got, want)
	// Fields left nil keep their values, including a cleared description.
	empty := ""
	got, err = s.UpdateEnvironment(ctx, "prod", store.EnvironmentUpdate{Description: &empty})
	must(t, err)
	want.Description = ""
	wantEqual(t, "environment after a description update", got, want)
	read, err := s.GetEnvironment(ctx, "prod")
	must(t, err)
	wantEqual(t, "stored environment", read, want)
	_, err = s.UpdateEnvironment(ctx, "nope", store.EnvironmentUpdate{AutoDeploy: &on})
	wantErr(t, err, store.ErrNotFound, `"nope"`)
}

func testApplicationRollout(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := store.Rollout{Window: 2, Pause: 90 * time.Second, FailurePolicy: store.FailureContinue}
	must(t, s.CreateApplication(ctx, store.Application{Name: "web", ImageRepository: "team/web", Rollout: r, CreatedAt: t0}))
	must(t, s.CreateApplication(ctx, store.Application{Name: "api", ImageRepository: "team/api", CreatedAt: t0}))
	got, err := s.GetApplication(ctx, "web")
	must(t, err)
	wantEqual(t, "rollout", got.Rollout, r)
	got, err = s.GetApplication(ctx, "api")
	must(t, err)
	wantEqual(t, "default rollout", got.Rollout, store.Rollout{})
}

// rolling creates deployment id over the fixture's targets in waves of
// window, the first wave queued and the rest waiting, as the server does.
func (f *fixture) rolling(t *testing.T, id string, window int) {
	t.Helper()
	d := store.Deployment{ID: id, ReleaseID: f.release.ID, Environment: "prod", CreatedAt: t0,
		Rollout: store.Rollout{Window: window, FailurePolicy: store.FailureHalt}}
	var tasks []store.Task
	for i, tg := range f.targets {
		wave := i/window + 1
		state := store.TaskQueued
		if wave > 1 {
			state = store.TaskWaiting
		}
		tasks = append(tasks, store.Task{ID: taskID(id, tg), TargetID: tg.ID, State: state, Wave: wave})
	}
	must(t, f.s.CreateDeployment(f.ctx, d, tasks))
}

// states maps each of the deployment's tasks' target names to its state.
func (f *fixture) states(t *testing.T, id string) map[string]store.TaskState {
	t.Helper()
	ts, err := f.s.ListTasks(f.ctx, id)
	must(t, err)
	out := map[string]store.TaskState{}
	for _, tk := range ts {
		out[tk.TargetName] = tk.State
	}
	return out
}

func testDeploymentRolloutAndKind(t *testing.T, s store.Store) {
	f := newFixture(t, s, 3)
	f.rolling(t, "dep-1", 2)
	d := f.deployment(t, "dep-1")
	wantEqual(t, "rollout", d.Rollout, store.Rollout{Window: 2, FailurePolicy: store.FailureHalt})
	wantEqual(t, "kind", d.Kind, store.KindDeploy)
	must(t, s.CreateDeployment(f.ctx, store.Deployment{ID: "dep-2", ReleaseID: "rel-1", Environment: "prod", Kind: store.KindRollback}, nil))
	wantEqual(t, "kind", f.deployment(t, "dep-2").Kind, store.KindRollback)
	ts, err := s.ListTasks(f.ctx, "dep-1")
	must(t, err)
	wantEqual(t, "waves", ids(ts, func(tk store.Task) string { return fmt.Sprintf("%s@%d:%s", tk.TargetName, tk.Wave, tk.State) }),
		[]string{"host-00@1:queued", "host-01@1:queued", "host-02@2:waiting"})
	// A waiting task is never sent.
	pending, err := s.PendingTasksForTarget(f.ctx, f.targets[2].ID)
	must(t, err)
	wantEqual(t, "pending tasks of a waiting target", len(pending), 0)
}

func testStartWave(t *testing.T, s store.Store) {
	f := newFixture(t, s, 5)
	f.rolling(t, "dep-1", 2)
	started, err := s.StartWave(f.ctx, "dep-1", 2)
	must(t, err)
	wantEqual(t, "started", ids(started, func(tk store.Task) string { return tk.TargetName + ":" + string(tk.State) }),
		[]string{"host-02:queued", "host-03:queued"})
	pending, err := s.PendingTasksForTarget(f.ctx, f.targets[2].ID)
	must(t, err)
	wantEqual(t, "pending after the wave started", len(pending), 1)
	// Again: nothing is waiting in wave 2 any more.
	started, err = s.StartWave(f.ctx, "dep-1", 2)
	must(t, err)
	wantEqual(t, "started twice", len(started), 0)
	// Tasks in other states are left alone.
	f.event(t, taskID("dep-1", f.targets[0]), 1, store.TaskSucceeded)
	started, err = s.StartWave(f.ctx, "dep-1", 1)
	must(t, err)
	wantEqual(t, "wave 1 again", len(started), 0)
	wantEqual(t, "states", f.states(t, "dep-1"), map[string]store.TaskState{
		"host-00": store.TaskSucceeded, "host-01": store.TaskQueued, "host-02": store.TaskQueued,
		"host-03": store.TaskQueued, "host-04": store.TaskWaiting,
	})
	_, err = s.StartWave(f.ctx, "dep-nope", 1)
	wantErr(t, err, store.ErrNotFound, `"dep-nope"`)
}

func testHaltDeployment(t *testing.T, s store.Store) {
	f := newFixture(t, s, 4)
	f.rolling(t, "dep-1", 2)
	f.event(t, taskID("dep-1", f.targets[0]), 1, store.TaskPulling)
	halted, err := s.HaltDeployment(f.ctx, "dep-1", "halted: task on host-00 failed")
	must(t, err)
	wantEqual(t, "halted", ids(halted, func(tk store.Task) string {
		return tk.TargetName + ":" + string(tk.State) + ":" + tk.FailureKind + ":" + tk.Message
	}), []string{
		"host-01:cancelled:halted:halted: task on host-00 failed",
		"host-02:cancelled:halted:halted: task on host-00 failed",
		"host-03:cancelled:halted:halted: task on host-00 failed",
	})
	// The running task is left to finish, and the deployment with it.
	wantEqual(t, "state while a task runs", f.deployment(t, "dep-1").State, store.DeploymentRunning)
	f.event(t, taskID("dep-1", f.targets[0]), 2, store.TaskSucceeded)
	d := f.deployment(t, "dep-1")
	wantEqual(t, "state after the running task", d.State, store.DeploymentFailed)
	if d.FinishedAt.IsZero() {
		t.Error("finished deployment has no FinishedAt")
	}
	// A halted task's log is complete: empty.
	tk := f.task(t, taskID("dep-1", f.targets[3]))
	wantEqual(t, "halted task's final log bytes", tk.FinalLogBytes, int64(0))
	_, err = s.HaltDeployment(f.ctx, "dep-nope", "x")
	wantErr(t, err, store.ErrNotFound, `"dep-nope"`)
}

func testHaltFinishesDeployment(t *testing.T, s store.Store) {
	f := newFixture(t, s, 3)
	f.rolling(t, "dep-1", 1)
	f.event(t, taskID("dep-1", f.targets[0]), 1, store.TaskFailed)
	wantEqual(t, "state with waiting tasks", f.deployment(t, "dep-1").State, store.DeploymentRunning)
	halted, err := s.HaltDeployment(f.ctx, "dep-1", "halted: task on host-00 failed")
	must(t, err)
	wantEqual(t, "halted", len(halted), 2)
	wantEqual(t, "state after the halt", f.deployment(t, "dep-1").State, store.DeploymentFailed)
	// Halting a finished deployment changes nothing.
	halted, err = s.HaltDeployment(f.ctx, "dep-1", "again")
	must(t, err)
	wantEqual(t, "halted again", len(halted), 0)
}

func testRequestCancelDeployment(t *testing.T, s store.Store) {
	f := newFixture(t, s, 1)
	f.deploy(t, "dep-1", t0, f.targets[0])
	d, err := s.RequestCancelDeployment(f.ctx, "dep-1", at(time.Hour))
	must(t, err)
	wantEqual(t, "cancel requested at", d.CancelRequestedAt, at(time.Hour))
	// Once: a second request keeps the first time.
	d, err = s.RequestCancelDeployment(f.ctx, "dep-1", at(2*time.Hour))
	must(t, err)
	wantEqual(t, "cancel requested at, asked twice", d.CancelRequestedAt, at(time.Hour))
	// A finished deployment is returned unchanged.
	f.deploy(t, "dep-2", t0, f.targets[0])
	f.event(t, taskID("dep-2", f.targets[0]), 1, store.TaskSucceeded)
	d, err = s.RequestCancelDeployment(f.ctx, "dep-2", at(time.Hour))
	must(t, err)
	if d.State != store.DeploymentSucceeded || !d.CancelRequestedAt.IsZero() {
		t.Errorf("finished deployment after a cancel request: %+v", d)
	}
	_, err = s.RequestCancelDeployment(f.ctx, "dep-nope", at(time.Hour))
	wantErr(t, err, store.ErrNotFound, `"dep-nope"`)
}

func testCancelledDeploymentEndsCancelled(t *testing.T, s store.Store) {
	f := newFixture(t, s, 3)
	f.rolling(t, "dep-1", 2)
	f.event(t, taskID("dep-1", f.targets[0]), 1, store.TaskSucceeded)
	f.event(t, taskID("dep-1", f.targets[1]), 1, store.TaskPulling)
	_, err := s.RequestCancelDeployment(f.ctx, "dep-1", at(time.Hour))
	must(t, err)
	halted, err := s.HaltDeployment(f.ctx, "dep-1", "cancelled by alice")
	must(t, err)
	wantEqual(t, "halted", ids(halted, func(tk store.Task) string { return tk.TargetName }), []string{"host-02"})
	wantEqual(t, "state while a task runs", f.deployment(t, "dep-1").State, store.DeploymentRunning)
	f.event(t, taskID("dep-1", f.targets[1]), 2, store.TaskCancelled)
	wantEqual(t, "state", f.deployment(t, "dep-1").State, store.DeploymentCancelled)
}

func testListRunningDeployments(t *testing.T, s store.Store) {
	f := newFixture(t, s, 1)
	f.deploy(t, "dep-b", at(2*time.Minute), f.targets[0])
	f.deploy(t, "dep-a", at(time.Minute), f.targets[0])
	f.deploy(t, "dep-done", at(0), f.targets[0])
	f.event(t, taskID("dep-done", f.targets[0]), 1, store.TaskFailed)
	ds, err := s.ListRunningDeployments(f.ctx)
	must(t, err)
	wantEqual(t, "running", ids(ds, func(d store.Deployment) string { return d.ID }), []string{"dep-a", "dep-b"})
}

func testTaskProgress(t *testing.T, s store.Store) {
	f := newFixture(t, s, 1)
	f.deploy(t, "dep-1", t0, f.targets[0])
	id := taskID("dep-1", f.targets[0])
	for _, e := range []store.TaskEvent{
		{TaskID: id, Sequence: 1, State: store.TaskPulling, ProgressBytes: 10, ProgressTotalBytes: 100},
		{TaskID: id, Sequence: 2, Message: "pulling", ProgressBytes: 60, ProgressTotalBytes: 100},
		{TaskID: id, Sequence: 3, Message: "layer done"}, // no progress: the task keeps its figures
	} {
		_, err := s.AppendTaskEvent(f.ctx, e)
		must(t, err)
	}
	tk := f.task(t, id)
	if tk.ProgressBytes != 60 || tk.ProgressTotalBytes != 100 || tk.State != store.TaskPulling {
		t.Errorf("task after progress events: %+v, want pulling 60/100", tk)
	}
	es, err := s.ListDeploymentEvents(f.ctx, "dep-1", 0)
	must(t, err)
	if len(es) != 3 || es[1].ProgressBytes != 60 || es[1].ProgressTotalBytes != 100 {
		t.Errorf("events: %+v, want the second with 60/100", es)
	}
}

func testReleaseSucceededInRequiredTargets(t *testing.T, s store.Store) {
	f := newFixture(t, s, 3)
	two := 2
	_, err := s.UpdateEnvironment(f.ctx, "prod", store.EnvironmentUpdate{RequiredTargets: &two})
	must(t, err)
	succeeded := func() bool {
		t.Helper()
		ok, err := s.ReleaseSucceededIn(f.ctx, f.release.ID, "prod")
		must(t, err)
		return ok
	}
	// Two partial deployments of one target each: the distinct targets count.
	f.deploy(t, "dep-1", at(time.Minute), f.targets[0])
	f.event(t, taskID("dep-1", f.targets[0]), 1, store.TaskSucceeded)
	if succeeded() {
		t.Fatal("one target of the two required counts as succeeded")
	}
	f.deploy(t, "dep-2", at(2*time.Minute), f.targets[0])
	f.event(t, taskID("dep-2", f.targets[0]), 1, store.TaskSucceeded)
	if succeeded() {
		t.Fatal("the same target twice counts as two")
	}
	f.deploy(t, "dep-3", at(3*time.Minute), f.targets[1], f.targets[2])
	f.event(t, taskID("dep-3", f.targets[1]), 1, store.TaskSucceeded)
	f.event(t, taskID("dep-3", f.targets[2]), 1, store.TaskFailed)
	if !succeeded() {
		t.Fatal("two distinct targets succeeded (in a failed deployment), want promotable")
	}
}

// withDeadline creates deployment id over the fixture's targets in waves
// of window (0: one wave), with the given deadline (zero: none).
func (f *fixture) withDeadline(t *testing.T, id string, window int, deadline time.Time) {
	t.Helper()
	d := store.Deployment{ID: id, ReleaseID: f.release.ID, Environment: "prod", CreatedAt: t0, DeadlineAt: deadline,
		Rollout: store.Rollout{Window: window, FailurePolicy: store.FailureContinue}}
	var tasks []store.Task
	for i, tg := range f.targets {
		wave, state := 1, store.TaskQueued
		if window > 0 && i >= window {
			wave, state = i/window+1, store.TaskWaiting
		}
		tasks = append(tasks, store.Task{ID: taskID(id, tg), TargetID: tg.ID, State: state, Wave: wave})
	}
	must(t, f.s.CreateDeployment(f.ctx, d, tasks))
}

func testDeploymentDeadline(t *testing.T, s store.Store) {
	f := newFixture(t, s, 1)
	f.withDeadline(t, "dep-1", 0, at(time.Hour))
	wantEqual(t, "deadline", f.deployment(t, "dep-1").DeadlineAt, at(time.Hour))
	f.deploy(t, "dep-2", t0, f.targets[0])
	wantEqual(t, "no deadline", f.deployment(t, "dep-2").DeadlineAt, time.Time{})
}

func testFailOverdueTasks(t *testing.T, s store.Store) {
	f := newFixture(t, s, 4)
	f.withDeadline(t, "dep-1", 2, at(time.Hour))
	f.event(t, taskID("dep-1", f.targets[0]), 1, store.TaskPulling) // accepted and running: left alone
	must(t, s.MarkTaskAssigned(f.ctx, taskID("dep-1", f.targets[1])))
	f.withDeadline(t, "dep-later", 0, at(2*time.Hour))
	f.deploy(t, "dep-none", t0, f.targets[0])

	failed, err := s.FailOverdueTasks(f.ctx, at(time.Hour-time.Microsecond))
	must(t, err)
	wantEqual(t, "failed before the deadline", len(failed), 0)

	failed, err = s.FailOverdueTasks(f.ctx, at(time.Hour))
	must(t, err)
	deadline := at(time.Hour).Format(time.RFC3339)
	wantEqual(t, "failed at the deadline", ids(failed, func(tk store.Task) string {
		return tk.TargetName + ":" + string(tk.State) + ":" + tk.FailureKind + ":" + tk.Message
	}), []string{
		"host-01:failed:target_unavailable:target host-01 had no session before the deployment's deadline (" + deadline + ")",
		"host-02:failed:target_unavailable:the deployment's deadline (" + deadline + ") passed before the wave of target host-02 started",
		"host-03:failed:target_unavailable:the deployment's deadline (" + deadline + ") passed before the wave of target host-03 started",
	})
	wantEqual(t, "failed task's final log bytes", f.task(t, taskID("dep-1", f.targets[1])).FinalLogBytes, int64(0))
	// The running task is left to finish, and the deployment with it.
	wantEqual(t, "state while a task runs", f.deployment(t, "dep-1").State, store.DeploymentRunning)
	f.event(t, taskID("dep-1", f.targets[0]), 2, store.TaskSucceeded)
	wantEqual(t, "state after the running task", f.deployment(t, "dep-1").State, store.DeploymentFailed)
	// Deployments with a later deadline, or none, keep their tasks.
	wantEqual(t, "later deadline", f.states(t, "dep-later")["host-00"], store.TaskQueued)
	wantEqual(t, "no deadline", f.states(t, "dep-none")["host-00"], store.TaskQueued)
	// Nothing is failed twice.
	failed, err = s.FailOverdueTasks(f.ctx, at(time.Hour+time.Minute))
	must(t, err)
	wantEqual(t, "failed again", len(failed), 0)
}

func testFailOverdueTasksFinishesDeployment(t *testing.T, s store.Store) {
	f := newFixture(t, s, 2)
	f.withDeadline(t, "dep-1", 0, at(time.Hour))
	failed, err := s.FailOverdueTasks(f.ctx, at(3*time.Hour))
	must(t, err)
	wantEqual(t, "failed", len(failed), 2)
	d := f.deployment(t, "dep-1")
	if d.State != store.DeploymentFailed || d.FinishedAt.IsZero() {
		t.Errorf("deployment whose every task was overdue: %+v, want failed and finished", d)
	}
	// A task that ended before the deadline is not touched by a late call.
	f.withDeadline(t, "dep-2", 0, at(time.Hour))
	f.event(t, taskID("dep-2", f.targets[0]), 1, store.TaskSucceeded)
	f.event(t, taskID("dep-2", f.targets[1]), 1, store.TaskCancelled)
	failed, err = s.FailOverdueTasks(f.ctx, at(3*time.Hour))
	must(t, err)
	wantEqual(t, "failed among ended tasks", len(failed), 0)
}
