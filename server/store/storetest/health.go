package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/server/store"
)

var healthTests = []namedTest{
	{"SetTargetHealth", testSetTargetHealth},
	{"TargetApplications", testTargetApplications},
	{"CreateDeploymentSkippedTargets", testCreateDeploymentSkippedTargets},
	{"CreateDeploymentAllFailed", testCreateDeploymentAllFailed},
}

func testSetTargetHealth(t *testing.T, s store.Store) {
	f := newFixture(t, s, 2)
	tg := f.targets[0]
	if got, err := s.GetTarget(f.ctx, tg.ID); err != nil || got.Health != nil || !got.HealthAt.IsZero() {
		t.Fatalf("before any report: %x at %v (%v), want none", got.Health, got.HealthAt, err)
	}
	must(t, s.SetTargetHealth(f.ctx, tg.ID, []byte{1, 2, 3}, at(time.Minute)))
	must(t, s.SetTargetHealth(f.ctx, tg.ID, []byte{4, 5}, at(2*time.Minute)))
	got, err := s.GetTarget(f.ctx, tg.ID)
	must(t, err)
	wantEqual(t, "health", got.Health, []byte{4, 5})
	wantEqual(t, "health at", got.HealthAt, at(2*time.Minute))
	// Every read of targets carries it; the other target has none.
	all, err := s.ListTargets(f.ctx)
	must(t, err)
	wantEqual(t, "listed health", [][]byte{all[0].Health, all[1].Health}, [][]byte{{4, 5}, nil})
	wantErr(t, s.SetTargetHealth(f.ctx, "nope", []byte{1}, t0), store.ErrNotFound, "nope")
}

func testTargetApplications(t *testing.T, s store.Store) {
	f := newFixture(t, s, 2)
	a, b := f.targets[0], f.targets[1]
	must(t, s.CreateRelease(f.ctx, store.Release{ID: "rel-2", Application: "web", Version: "2.0.0", ImageTag: "2.0.0"}))
	must(t, s.CreateApplication(f.ctx, store.Application{Name: "api", ImageRepository: "team/api"}))
	must(t, s.CreateRelease(f.ctx, store.Release{ID: "rel-api", Application: "api", Version: "7", ImageTag: "7"}))
	list := func(target string) []store.TargetApplication {
		t.Helper()
		got, err := s.TargetApplications(f.ctx, target)
		must(t, err)
		return got
	}
	wantEqual(t, "nothing deployed", list(""), []store.TargetApplication(nil))

	// web 1.0.0 succeeds on both; then 2.0.0 succeeds on a, fails on b.
	f.deploy(t, "dep-1", at(time.Minute), a, b)
	f.event(t, taskID("dep-1", a), 1, store.TaskSucceeded)
	_, err := s.AppendTaskEvent(f.ctx, store.TaskEvent{TaskID: taskID("dep-1", b), Sequence: 1, State: store.TaskSucceeded, ImageDigest: "sha256:b1"})
	must(t, err)
	must(t, s.CreateDeployment(f.ctx, store.Deployment{ID: "dep-2", ReleaseID: "rel-2", Environment: "prod", CreatedAt: at(2 * time.Minute)},
		[]store.Task{{ID: "dep-2/a", TargetID: a.ID}, {ID: "dep-2/b", TargetID: b.ID}}))
	f.event(t, "dep-2/a", 1, store.TaskSucceeded)
	f.event(t, "dep-2/b", 1, store.TaskFailed)
	// api is under way on a (pulling) and only waiting for its wave on b.
	must(t, s.CreateDeployment(f.ctx, store.Deployment{ID: "dep-3", ReleaseID: "rel-api", Environment: "prod", CreatedAt: at(3 * time.Minute)},
		[]store.Task{{ID: "dep-3/a", TargetID: a.ID}, {ID: "dep-3/b", TargetID: b.ID, State: store.TaskWaiting, Wave: 2}}))
	f.event(t, "dep-3/a", 1, store.TaskPulling)

	wantA := []store.TargetApplication{
		{TargetID: a.ID, Application: "api", Deploying: true},
		{TargetID: a.ID, Application: "web", TaskID: "dep-2/a", ReleaseID: "rel-2", ReleaseVersion: "2.0.0"},
	}
	wantB := []store.TargetApplication{
		{TargetID: b.ID, Application: "web", TaskID: taskID("dep-1", b), ReleaseID: "rel-1", ReleaseVersion: "1.0.0", ImageDigest: "sha256:b1"},
	}
	wantEqual(t, "target a", list(a.ID), wantA)
	wantEqual(t, "target b", list(b.ID), wantB)
	wantEqual(t, "every target", list(""), append(append([]store.TargetApplication{}, wantA...), wantB...))
	wantEqual(t, "unknown target", list("nope"), []store.TargetApplication(nil))

	// web 2.0.0 under way on a, which ran it already: both show.
	must(t, s.CreateDeployment(f.ctx, store.Deployment{ID: "dep-4", ReleaseID: "rel-2", Environment: "prod", CreatedAt: at(4 * time.Minute)},
		[]store.Task{{ID: "dep-4/a", TargetID: a.ID}}))
	wantA[1].Deploying = true
	wantEqual(t, "target a redeploying web", list(a.ID), wantA)
}

func testCreateDeploymentSkippedTargets(t *testing.T, s store.Store) {
	f := newFixture(t, s, 2)
	d := store.Deployment{ID: "dep-1", ReleaseID: "rel-1", Environment: "prod", CreatedAt: t0, SkippedTargets: []string{"host-01", "gone"}}
	must(t, s.CreateDeployment(f.ctx, d, []store.Task{{ID: "t-a", TargetID: f.targets[0].ID}}))
	wantEqual(t, "skipped targets", f.deployment(t, "dep-1").SkippedTargets, []string{"host-01", "gone"})
	f.deploy(t, "dep-2", t0, f.targets[0])
	wantEqual(t, "none skipped", f.deployment(t, "dep-2").SkippedTargets, []string(nil))
	ds, err := s.ListDeployments(f.ctx, store.DeploymentFilter{})
	must(t, err)
	wantEqual(t, "listed", ids(ds, func(d store.Deployment) string { return d.ID + ":" + joinNames(d.SkippedTargets) }), []string{"dep-2:", "dep-1:host-01,gone"})
}

func joinNames(names []string) string { return strings.Join(names, ",") }

// A deployment whose every task fails at creation (its targets were
// unavailable) ends at once; one with a task left to run does not.
func testCreateDeploymentAllFailed(t *testing.T, s store.Store) {
	f := newFixture(t, s, 2)
	failed := func(id string, tg store.Target) store.Task {
		return store.Task{ID: id, TargetID: tg.ID, State: store.TaskFailed, FailureKind: "target_unavailable", Message: "no session"}
	}
	must(t, s.CreateDeployment(f.ctx, store.Deployment{ID: "dep-1", ReleaseID: "rel-1", Environment: "prod", CreatedAt: t0},
		[]store.Task{failed("t-1a", f.targets[0]), failed("t-1b", f.targets[1])}))
	d := f.deployment(t, "dep-1")
	if d.State != store.DeploymentFailed || !d.FinishedAt.Equal(t0) {
		t.Errorf("all tasks failed at creation: deployment %s finished %v, want failed at %v", d.State, d.FinishedAt, t0)
	}
	if tk := f.task(t, "t-1a"); tk.State != store.TaskFailed || tk.FailureKind != "target_unavailable" || tk.Message != "no session" {
		t.Errorf("task = %+v", tk)
	}

	must(t, s.CreateDeployment(f.ctx, store.Deployment{ID: "dep-2", ReleaseID: "rel-1", Environment: "prod", CreatedAt: t0},
		[]store.Task{failed("t-2a", f.targets[0]), {ID: "t-2b", TargetID: f.targets[1].ID}}))
	if d := f.deployment(t, "dep-2"); d.State != store.DeploymentRunning {
		t.Fatalf("one task left to run: deployment %s, want running", d.State)
	}
	f.event(t, "t-2b", 1, store.TaskSucceeded)
	if d := f.deployment(t, "dep-2"); d.State != store.DeploymentFailed {
		t.Errorf("after the last task: deployment %s, want failed", d.State)
	}
}
