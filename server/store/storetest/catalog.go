package storetest

import (
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/internal/spec"
	"github.com/tentacle-deploy/tentacle/server/store"
)

var catalogTests = []namedTest{
	{"CreateEnvironment", testCreateEnvironment},
	{"GetEnvironment", testGetEnvironment},
	{"ListEnvironments", testListEnvironments},
	{"PreviousEnvironment", testPreviousEnvironment},
	{"CreateApplication", testCreateApplication},
	{"GetApplication", testGetApplication},
	{"ListApplications", testListApplications},
	{"CreateRelease", testCreateRelease},
	{"GetRelease", testGetRelease},
	{"GetReleaseByID", testGetReleaseByID},
	{"ListReleases", testListReleases},
	{"PinReleaseDigest", testPinReleaseDigest},
	{"Times", testTimes},
	{"Close", testClose},
}

const (
	digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

var webSpec = spec.RunSpec{
	Env:           []spec.EnvVar{{Name: "MODE", Value: "prod"}, {Name: "EMPTY", Value: ""}},
	Command:       []string{"/web", "--listen", ":8080"},
	Ports:         []spec.Port{{ContainerPort: 8080, HostPort: 80, Protocol: "tcp", HostIP: "0.0.0.0"}},
	ReadyAfter:    15 * time.Second,
	StopTimeout:   30 * time.Second,
	RestartPolicy: "always",
}

func testCreateEnvironment(t *testing.T, s store.Store) {
	ctx := t.Context()
	e := store.Environment{Name: "prod", Description: "customers", CreatedAt: t0}
	must(t, s.CreateEnvironment(ctx, e))
	err := s.CreateEnvironment(ctx, store.Environment{Name: "prod", Description: "again", CreatedAt: t0})
	wantErr(t, err, store.ErrConflict, `"prod"`)
	got, err := s.GetEnvironment(ctx, "prod")
	must(t, err)
	e.Position = 1 // the first in the lifecycle
	wantEqual(t, "environment after the conflict", got, e)
}

func testGetEnvironment(t *testing.T, s store.Store) {
	ctx := t.Context()
	e := store.Environment{Name: "dev", Description: "playground", CreatedAt: t0}
	must(t, s.CreateEnvironment(ctx, e))
	got, err := s.GetEnvironment(ctx, "dev")
	must(t, err)
	e.Position = 1
	wantEqual(t, "environment", got, e)
	_, err = s.GetEnvironment(ctx, "nope")
	wantErr(t, err, store.ErrNotFound, `"nope"`)
}

func testListEnvironments(t *testing.T, s store.Store) {
	ctx := t.Context()
	es, err := s.ListEnvironments(ctx)
	must(t, err)
	if len(es) != 0 {
		t.Fatalf("empty store lists %d environments", len(es))
	}
	// Creation order is the lifecycle order: not by name, not by timestamp.
	for _, n := range []string{"dev", "test", "prod"} {
		must(t, s.CreateEnvironment(ctx, store.Environment{Name: n, CreatedAt: t0}))
	}
	es, err = s.ListEnvironments(ctx)
	must(t, err)
	wantEqual(t, "environments", ids(es, func(e store.Environment) string { return e.Name }),
		[]string{"dev", "test", "prod"})
	for i, e := range es {
		if e.Position != i+1 {
			t.Errorf("%s has position %d, want %d", e.Name, e.Position, i+1)
		}
	}
}

func testPreviousEnvironment(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, n := range []string{"dev", "test", "prod"} {
		must(t, s.CreateEnvironment(ctx, store.Environment{Name: n, CreatedAt: t0}))
	}
	_, ok, err := s.PreviousEnvironment(ctx, "dev")
	must(t, err)
	if ok {
		t.Fatal("the first environment has a previous one")
	}
	prev, ok, err := s.PreviousEnvironment(ctx, "prod")
	must(t, err)
	if !ok || prev.Name != "test" || prev.Position != 2 {
		t.Fatalf("before prod: %+v, %v; want test at 2", prev, ok)
	}
	_, _, err = s.PreviousEnvironment(ctx, "nope")
	wantErr(t, err, store.ErrNotFound, `"nope"`)
}

func testCreateApplication(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := store.Application{Name: "web", ImageRepository: "registry.example.com:5000/team/web", RunSpec: webSpec, Roles: []string{"web", "edge"}, CreatedAt: t0}
	must(t, s.CreateApplication(ctx, a))
	err := s.CreateApplication(ctx, store.Application{Name: "web", ImageRepository: "other/web", CreatedAt: t0})
	wantErr(t, err, store.ErrConflict, `"web"`)
	got, err := s.GetApplication(ctx, "web")
	must(t, err)
	wantEqual(t, "application after the conflict", got, a)
}

func testGetApplication(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, a := range []store.Application{
		{Name: "web", ImageRepository: "registry.example.com:5000/team/web", RunSpec: webSpec, CreatedAt: t0},
		{Name: "bare", ImageRepository: "docker.io/library/nginx", CreatedAt: t0}, // empty run spec
	} {
		must(t, s.CreateApplication(ctx, a))
		got, err := s.GetApplication(ctx, a.Name)
		must(t, err)
		wantEqual(t, "application", got, a)
	}
	_, err := s.GetApplication(ctx, "nope")
	wantErr(t, err, store.ErrNotFound, `"nope"`)
}

func testListApplications(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, n := range []string{"worker", "api", "web"} {
		must(t, s.CreateApplication(ctx, store.Application{Name: n, ImageRepository: "team/" + n, CreatedAt: t0}))
	}
	as, err := s.ListApplications(ctx)
	must(t, err)
	wantEqual(t, "applications by name", ids(as, func(a store.Application) string { return a.Name }),
		[]string{"api", "web", "worker"})
}

func testCreateRelease(t *testing.T, s store.Store) {
	f := newFixture(t, s, 0)
	r := store.Release{ID: "rel-2", Application: "web", Version: "2.0.0", ImageRepository: "team/web",
		ImageTag: "2.0.0", ImageDigest: digestA, RunSpec: webSpec, CreatedAt: at(time.Second)}
	must(t, s.CreateRelease(f.ctx, r))
	got, err := s.GetReleaseByID(f.ctx, "rel-2")
	must(t, err)
	wantEqual(t, "release", got, r)

	t.Run("same version", func(t *testing.T) {
		dup := r
		dup.ID = "rel-3"
		wantErr(t, s.CreateRelease(f.ctx, dup), store.ErrConflict, `"2.0.0"`, `"web"`)
		_, err := s.GetReleaseByID(f.ctx, "rel-3")
		wantErr(t, err, store.ErrNotFound)
	})
	t.Run("same ID", func(t *testing.T) {
		dup := r
		dup.Version = "2.0.1"
		wantErr(t, s.CreateRelease(f.ctx, dup), store.ErrConflict)
	})
	t.Run("unknown application", func(t *testing.T) {
		err := s.CreateRelease(f.ctx, store.Release{ID: "rel-x", Application: "nope", Version: "1", ImageTag: "1"})
		wantErr(t, err, store.ErrNotFound, `"nope"`)
	})
	t.Run("same version in another application", func(t *testing.T) {
		must(t, s.CreateApplication(f.ctx, store.Application{Name: "api", ImageRepository: "team/api"}))
		must(t, s.CreateRelease(f.ctx, store.Release{ID: "rel-api", Application: "api", Version: "2.0.0", ImageTag: "2.0.0"}))
	})
}

func testGetRelease(t *testing.T, s store.Store) {
	f := newFixture(t, s, 0)
	got, err := s.GetRelease(f.ctx, "web", "1.0.0")
	must(t, err)
	wantEqual(t, "release", got, f.release)
	_, err = s.GetRelease(f.ctx, "web", "9.9.9")
	wantErr(t, err, store.ErrNotFound, `"9.9.9"`)
	_, err = s.GetRelease(f.ctx, "nope", "1.0.0")
	wantErr(t, err, store.ErrNotFound, `"nope"`)
}

func testGetReleaseByID(t *testing.T, s store.Store) {
	f := newFixture(t, s, 0)
	got, err := s.GetReleaseByID(f.ctx, "rel-1")
	must(t, err)
	wantEqual(t, "release", got, f.release)
	_, err = s.GetReleaseByID(f.ctx, "rel-nope")
	wantErr(t, err, store.ErrNotFound, `"rel-nope"`)
}

func testListReleases(t *testing.T, s store.Store) {
	f := newFixture(t, s, 0) // rel-1 of web at t0
	must(t, s.CreateApplication(f.ctx, store.Application{Name: "api", ImageRepository: "team/api", CreatedAt: t0}))
	for _, r := range []store.Release{
		{ID: "rel-3", Application: "web", Version: "3", ImageTag: "3", CreatedAt: at(3 * time.Second)},
		{ID: "rel-2", Application: "web", Version: "2", ImageTag: "2", CreatedAt: at(2 * time.Second)},
		{ID: "rel-a", Application: "api", Version: "1", ImageTag: "1", CreatedAt: at(time.Second)},
	} {
		must(t, s.CreateRelease(f.ctx, r))
	}
	byID := func(r store.Release) string { return r.ID }
	rs, err := s.ListReleases(f.ctx, "web")
	must(t, err)
	wantEqual(t, "releases of web, newest first", ids(rs, byID), []string{"rel-3", "rel-2", "rel-1"})
	rs, err = s.ListReleases(f.ctx, "")
	must(t, err)
	wantEqual(t, "all releases, newest first", ids(rs, byID), []string{"rel-3", "rel-2", "rel-a", "rel-1"})

	must(t, s.CreateApplication(f.ctx, store.Application{Name: "empty", ImageRepository: "team/empty"}))
	rs, err = s.ListReleases(f.ctx, "empty")
	must(t, err)
	if len(rs) != 0 {
		t.Errorf("application without releases lists %d", len(rs))
	}
	_, err = s.ListReleases(f.ctx, "nope")
	wantErr(t, err, store.ErrNotFound, `"nope"`)
}

func testPinReleaseDigest(t *testing.T, s store.Store) {
	f := newFixture(t, s, 0) // rel-1 has no digest
	got, err := s.PinReleaseDigest(f.ctx, "rel-1", digestA)
	must(t, err)
	wantEqual(t, "first pin", got, digestA)
	got, err = s.PinReleaseDigest(f.ctx, "rel-1", digestB)
	must(t, err)
	wantEqual(t, "second pin (the first wins)", got, digestA)
	r, err := s.GetReleaseByID(f.ctx, "rel-1")
	must(t, err)
	wantEqual(t, "stored digest", r.ImageDigest, digestA)

	must(t, s.CreateRelease(f.ctx, store.Release{ID: "rel-2", Application: "web", Version: "2", ImageTag: "2", ImageDigest: digestB}))
	got, err = s.PinReleaseDigest(f.ctx, "rel-2", digestA)
	must(t, err)
	wantEqual(t, "pin of a release created with a digest", got, digestB)

	_, err = s.PinReleaseDigest(f.ctx, "rel-nope", digestA)
	wantErr(t, err, store.ErrNotFound, `"rel-nope"`)
}

// testTimes checks that times come back in UTC at microsecond precision, and
// that a zero creation time is set by the store.
func testTimes(t *testing.T, s store.Store) {
	ctx := t.Context()
	in := time.Date(2026, 3, 1, 11, 30, 0, 123456789, time.FixedZone("CET", 3600))
	must(t, s.CreateEnvironment(ctx, store.Environment{Name: "zoned", CreatedAt: in}))
	e, err := s.GetEnvironment(ctx, "zoned")
	must(t, err)
	if want := in.Truncate(time.Microsecond).UTC(); !e.CreatedAt.Equal(want) || e.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt = %v, want %v in UTC", e.CreatedAt, want)
	}

	before := time.Now().Add(-time.Second)
	must(t, s.CreateEnvironment(ctx, store.Environment{Name: "unstamped"}))
	e, err = s.GetEnvironment(ctx, "unstamped")
	must(t, err)
	if e.CreatedAt.Before(before) || e.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("zero CreatedAt stored as %v, want about now", e.CreatedAt)
	}
}

// testClose checks that Close can be called twice and that a closed store
// fails instead of panicking.
func testClose(t *testing.T, s store.Store) {
	must(t, s.Close())
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.ListEnvironments(t.Context()); err == nil {
		t.Error("ListEnvironments after Close succeeded")
	}
}
