// Package storetest is the behaviour every store.Store backend must have,
// as one test suite: a backend's own tests call Run with a function that
// opens an empty store.
//
// It uses only the store interface, so SQLite and PostgreSQL are held to
// the same contract; backend-specific checks belong with the backend.
package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/server/store"
)

// Run runs the suite. open must return a new, empty store each time it is
// called (subtests run in parallel, each on its own store) and arrange for
// it to be closed when t ends; Close may then be called a second time.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	groups := []struct {
		name  string
		tests []namedTest
	}{
		{"catalog", catalogTests},
		{"targets", targetTests},
		{"revoke", revokeTests},
		{"admin", adminTests},
		{"audit", auditTests},
		{"deployments", deploymentTests},
		{"events", eventTests},
		{"rollout", rolloutTests},
		{"logs", logTests},
		{"concurrency", concurrencyTests},
		{"variables", variableTests},
		{"health", healthTests},
		{"metrics", metricsTests},
	}
	for _, g := range groups {
		for _, tc := range g.tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.fn(t, open(t))
			})
		}
	}
}

type namedTest struct {
	name string
	fn   func(t *testing.T, s store.Store)
}

// t0 has microsecond precision, the precision every backend keeps.
var t0 = time.Date(2026, 3, 1, 9, 30, 0, 123456000, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantErr checks that err wraps sentinel and that its message names each of
// the given words (the object the error is about).
func wantErr(t *testing.T, err, sentinel error, names ...string) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("got error %v, want one wrapping %q", err, sentinel)
	}
	for _, n := range names {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("error %q does not name %q", err, n)
		}
	}
}

func wantEqual[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

// ids returns f of each element, to compare lists by what identifies them.
func ids[T any](xs []T, f func(T) string) []string {
	out := []string{}
	for _, x := range xs {
		out = append(out, f(x))
	}
	return out
}

// fixture is a store with environments dev and prod, application web with
// release 1.0.0, and targets enrolled in prod.
type fixture struct {
	s       store.Store
	ctx     context.Context
	release store.Release
	targets []store.Target
}

func newFixture(t *testing.T, s store.Store, nTargets int) *fixture {
	t.Helper()
	ctx := t.Context()
	f := &fixture{s: s, ctx: ctx}
	must(t, s.CreateEnvironment(ctx, store.Environment{Name: "dev", CreatedAt: t0}))
	must(t, s.CreateEnvironment(ctx, store.Environment{Name: "prod", CreatedAt: t0}))
	must(t, s.CreateApplication(ctx, store.Application{Name: "web", ImageRepository: "registry.example.com/team/web", CreatedAt: t0}))
	f.release = store.Release{
		ID: "rel-1", Application: "web", Version: "1.0.0",
		ImageRepository: "registry.example.com/team/web", ImageTag: "1.0.0", CreatedAt: t0,
	}
	must(t, s.CreateRelease(ctx, f.release))
	if nTargets == 0 {
		return f
	}
	must(t, s.CreateJoinToken(ctx, store.JoinToken{
		ID: "tok-fixture", SecretHash: hash("fixture"), Environment: "prod", Roles: []string{"web"},
		ExpiresAt: at(time.Hour), UsesAllowed: nTargets, CreatedAt: t0,
	}))
	for i := range nTargets {
		tg, err := s.EnrollTarget(ctx, "tok-fixture", hash("fixture"), at(time.Minute), store.Target{
			ID: fmt.Sprintf("tgt-%02d", i), Name: fmt.Sprintf("host-%02d", i),
		})
		must(t, err)
		f.targets = append(f.targets, tg)
	}
	return f
}

// deploy creates deployment id of release rel-1 to prod, with one task per
// target, named id+"/"+target ID.
func (f *fixture) deploy(t *testing.T, id string, created time.Time, targets ...store.Target) store.Deployment {
	t.Helper()
	d := store.Deployment{ID: id, ReleaseID: f.release.ID, Environment: "prod", CreatedBy: "alice", CreatedAt: created}
	var tasks []store.Task
	for _, tg := range targets {
		tasks = append(tasks, store.Task{ID: taskID(id, tg), DeploymentID: id, TargetID: tg.ID, CreatedAt: created})
	}
	must(t, f.s.CreateDeployment(f.ctx, d, tasks))
	got, err := f.s.GetDeployment(f.ctx, id)
	must(t, err)
	return got
}

func taskID(deploymentID string, tg store.Target) string { return deploymentID + "/" + tg.ID }

// event appends a new event and fails unless the store reports it new.
func (f *fixture) event(t *testing.T, task string, seq uint64, state store.TaskState) {
	t.Helper()
	isNew, err := f.s.AppendTaskEvent(f.ctx, store.TaskEvent{TaskID: task, Sequence: seq, State: state, OccurredAt: t0})
	must(t, err)
	if !isNew {
		t.Fatalf("event %s #%d: reported as a replay", task, seq)
	}
}

func (f *fixture) task(t *testing.T, id string) store.Task {
	t.Helper()
	tk, err := f.s.GetTask(f.ctx, id)
	must(t, err)
	return tk
}

func (f *fixture) deployment(t *testing.T, id string) store.Deployment {
	t.Helper()
	d, err := f.s.GetDeployment(f.ctx, id)
	must(t, err)
	return d
}
