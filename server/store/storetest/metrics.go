package storetest

import (
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/server/store"
)

var metricsTests = []namedTest{
	{"CountTasksByState", testCountTasksByState},
}

func testCountTasksByState(t *testing.T, s store.Store) {
	f := newFixture(t, s, 3)
	got, err := s.CountTasksByState(f.ctx)
	must(t, err)
	wantEqual(t, "counts of an empty store", got, map[store.TaskState]int{})

	f.deploy(t, "dep-1", at(time.Hour), f.targets...)
	f.deploy(t, "dep-2", at(2*time.Hour), f.targets[0])
	must(t, s.MarkTaskAssigned(f.ctx, taskID("dep-1", f.targets[1])))
	f.event(t, taskID("dep-1", f.targets[0]), 1, store.TaskSucceeded)
	f.event(t, taskID("dep-1", f.targets[2]), 1, store.TaskFailed)
	got, err = s.CountTasksByState(f.ctx)
	must(t, err)
	wantEqual(t, "counts", got, map[store.TaskState]int{
		store.TaskQueued: 1, store.TaskAssigned: 1, store.TaskSucceeded: 1, store.TaskFailed: 1,
	})
}
