package docker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/tentacle-deploy/tentacle/internal/spec"
)

// Reconcile against the real engine: each test builds the containers a
// Deploy leaves when the agent dies at some step, then checks what the
// restarted agent makes of them.

// crashedCreate creates task's container under name as Deploy does (restart
// policy off until the gate passes), without starting it.
func (f *fixture) crashedCreate(task Task, digest, name string) string {
	f.t.Helper()
	repo, err := task.validate()
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.d.pull(context.Background(), task, repo, func(Progress) {}, zap.NewNop()); err != nil {
		f.t.Fatal(err)
	}
	cfg, host := ContainerConfig(task, f.repository()+"@"+digest)
	host.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyDisabled}
	c, err := f.api.ContainerCreate(context.Background(), cfg, host, nil, nil, name)
	if err != nil {
		f.t.Fatal(err)
	}
	return c.ID
}

// reconcileTask is f.task with an id no other test uses: Reconcile finds
// containers by task id.
func (f *fixture) reconcileTask(tag, digest string, env ...spec.EnvVar) Task {
	t := f.task(tag, digest, env...)
	t.ID = f.app + "-" + tag
	return t
}

// crashedStart is crashedCreate, then started.
func (f *fixture) crashedStart(task Task, digest, name string) string {
	f.t.Helper()
	id := f.crashedCreate(task, digest, name)
	if err := f.api.ContainerStart(context.Background(), id, container.StartOptions{}); err != nil {
		f.t.Fatal(err)
	}
	return id
}

// setAside stops the container and renames it "<app>.previous", as a
// recreate swap does before the new container takes the name.
func (f *fixture) setAside(id string) {
	f.t.Helper()
	ctx := context.Background()
	if err := f.api.ContainerStop(ctx, id, container.StopOptions{}); err != nil {
		f.t.Fatal(err)
	}
	if err := f.api.ContainerRename(ctx, id, f.app+suffixPrevious); err != nil {
		f.t.Fatal(err)
	}
}

// taskContainers counts the containers labelled with the task's id.
func (f *fixture) taskContainers(taskID string) int {
	f.t.Helper()
	list, err := f.api.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelTask+"="+taskID))})
	if err != nil {
		f.t.Fatal(err)
	}
	return len(list)
}

// first deploys release 1.0 and returns its running container's id.
func (f *fixture) first(digest string) string {
	f.t.Helper()
	res, err, _ := f.run(context.Background(), f.task("1.0", digest, env("TESTAPP_MESSAGE", "v1")))
	if err != nil {
		f.t.Fatalf("first Deploy: %v", err)
	}
	return res.ContainerID
}

// twoReleases pushes releases 1.0 and 2.0, deploys 1.0 and returns 2.0's
// digest and the running container of 1.0.
func (f *fixture) twoReleases() (digest2, old string) {
	f.t.Helper()
	d1 := f.push("1.0")
	return f.push("2.0"), f.first(d1)
}

func (f *fixture) assertRuns(id, what string) {
	f.t.Helper()
	if c := f.inspect(f.app); c == nil || c.ID != id || !c.State.Running {
		f.t.Fatalf("%s: %s = %+v, want %s running", what, f.app, c, id)
	}
}

func TestReconcileWithoutContainerCreatesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	d1 := f.push("1.0")
	old := f.first(d1)
	task := f.reconcileTask("2.0", d1)
	res, err := f.d.Reconcile(context.Background(), task, nil, nil)
	if err != ErrNotCreated {
		t.Fatalf("Reconcile = %+v, %v; want ErrNotCreated", res, err)
	}
	if n := f.taskContainers(task.ID); n != 0 {
		t.Errorf("Reconcile created %d containers for the task", n)
	}
	f.assertRuns(old, "after Reconcile of a task that created nothing")
	f.assertNoLeftovers()
}

// A crash between "stop old, set it aside" and "rename new": Reconcile
// removes the new container and brings the old one back, running.
func TestReconcileNextRollsBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	d2, old := f.twoReleases()
	ctx := context.Background()
	task := f.reconcileTask("2.0", d2)
	f.crashedCreate(task, d2, f.app+suffixNext)
	f.setAside(old)

	res, err := f.d.Reconcile(ctx, task, nil, nil)
	want := fmt.Sprintf("the agent restarted during the task and rolled it back: %s runs its previous container again", f.app)
	if KindOf(err) != FailureInterrupted || err.Error() != want {
		t.Fatalf("Reconcile error = %v (kind %q), want %q of kind interrupted", err, KindOf(err), want)
	}
	if res.Digest != d2 {
		t.Errorf("Result.Digest = %q, want the task's %s", res.Digest, d2)
	}
	f.assertRuns(old, "after rolling back")
	if n := f.taskContainers(task.ID); n != 0 {
		t.Errorf("%d containers of the rolled back task remain", n)
	}
	f.assertNoLeftovers()
}

// A crash between stopping the old container and setting it aside: it is
// still "<app>", stopped, and was stopped by the task: started again.
func TestReconcileNextRestartsTheOldStoppedByTheTask(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	d1 := f.push("1.0")
	old := f.first(d1)
	ctx := context.Background()
	task := f.reconcileTask("2.0", d1)
	f.crashedCreate(task, d1, f.app+suffixNext)
	if err := f.api.ContainerStop(ctx, old, container.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.d.Reconcile(ctx, task, nil, nil); KindOf(err) != FailureInterrupted {
		t.Fatalf("Reconcile error = %v, want kind interrupted", err)
	}
	f.assertRuns(old, "the old container stopped by the interrupted task")
	f.assertNoLeftovers()
}

// The new container had taken the name and runs: the gate is resumed and
// passes; the set-aside old one is removed, the restart policy armed.
func TestReconcileNamedResumesGateAndSucceeds(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	d2, old := f.twoReleases()
	ctx := context.Background()
	f.setAside(old)
	task := f.reconcileTask("2.0", d2, env("TESTAPP_MESSAGE", "v2"), env("TESTAPP_LINES", "1000000"))
	id := f.crashedStart(task, d2, f.app)

	rec := &recorder{}
	res, err := f.d.Reconcile(ctx, task, rec.progress, &rec.logs)
	if err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	if res.ContainerID != id || res.Digest != d2 {
		t.Errorf("Result = %+v, want container %s digest %s", res, id, d2)
	}
	f.assertRuns(id, "after the resumed gate")
	if c := f.inspect(f.app); c.HostConfig.RestartPolicy.Name != container.RestartPolicyUnlessStopped {
		t.Errorf("restart policy = %+v, want the run spec's unless-stopped", c.HostConfig.RestartPolicy)
	}
	if rec.logs.String() == "" {
		t.Error("no output of the resumed container reached the task log")
	}
	f.assertNoLeftovers()
}

// Renamed but never started (a crash right before the start): started now,
// not created again.
func TestReconcileNamedNotStartedIsStarted(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	d1 := f.push("1.0")
	task := f.reconcileTask("1.0", d1)
	id := f.crashedCreate(task, d1, f.app)
	res, err := f.d.Reconcile(context.Background(), task, nil, nil)
	if err != nil || res.ContainerID != id {
		t.Fatalf("Reconcile = %+v, %v; want container %s", res, err, id)
	}
	f.assertRuns(id, "after Reconcile started it")
	if n := f.taskContainers(task.ID); n != 1 {
		t.Errorf("%d containers of the task, want 1", n)
	}
}

// The new container exited while the agent was down: the task fails and
// the old container is restored.
func TestReconcileNamedExitedRollsBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	d2, old := f.twoReleases()
	ctx := context.Background()
	f.setAside(old)
	task := f.reconcileTask("2.0", d2, env("TESTAPP_LINES", "1"), env("TESTAPP_EXIT", "4"))
	id := f.crashedStart(task, d2, f.app)
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	exitC, errC := f.api.ContainerWait(waitCtx, id, container.WaitConditionNotRunning)
	select {
	case <-exitC:
	case err := <-errC:
		t.Fatal(err)
	}

	_, err := f.d.Reconcile(ctx, task, nil, nil)
	want := fmt.Sprintf("container %s exited with code 4 while the agent was not running", f.app)
	if KindOf(err) != FailureContainerExited || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("Reconcile error = %v (kind %q), want it to start with %q", err, KindOf(err), want)
	}
	f.assertRuns(old, "after the failed resume")
	if n := f.taskContainers(task.ID); n != 0 {
		t.Errorf("%d containers of the failed task remain", n)
	}
	f.assertNoLeftovers()
}

// After a reboot the agent may start before Docker: Reconcile waits for
// the engine rather than guess, and says so when it gives up.
func TestReconcileWaitsForTheEngine(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens there now
	api, err := client.NewClientWithOpts(client.WithHost("tcp://"+addr), client.WithVersion("1.41"))
	if err != nil {
		t.Fatal(err)
	}
	d := New(api, nil, zaptest.NewLogger(t))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	task := Task{ID: "t1", Application: "web", Repository: "registry.example.com/team/web", Tag: "1.0"}
	_, err = d.Reconcile(ctx, task, nil, nil)
	if !errors.Is(err, ErrEngineUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Reconcile without an engine = %v, want ErrEngineUnreachable after the ctx ended", err)
	}
}
