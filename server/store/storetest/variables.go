package storetest

import (
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/server/store"
)

var variableTests = []namedTest{
	{"SetAndListVariables", testSetAndListVariables},
	{"SetVariableRefusals", testSetVariableRefusals},
	{"DeleteVariable", testDeleteVariable},
	{"ReleaseSnapshotsVariables", testReleaseSnapshotsVariables},
}

func webVariables() []store.Variable {
	return []store.Variable{
		{Application: "web", Name: "DB_HOST", Value: "db.prod", Scope: store.VariableScope{Environment: "prod"}, UpdatedAt: t0, UpdatedBy: "admin-token:ops"},
		{Application: "web", Name: "DB_HOST", Value: "db.local", UpdatedAt: t0, UpdatedBy: "admin-token:ops"},
		{Application: "web", Name: "DB_PASSWORD", Sensitive: true, Sealed: []byte{1, 2, 3, 0, 255}, Scope: store.VariableScope{Role: "web"}, UpdatedAt: at(time.Second), UpdatedBy: "admin-token:ops"},
		{Application: "web", Name: "DEBUG", Value: "", Scope: store.VariableScope{Environment: "dev", Role: "web", Target: "host-00"}, UpdatedAt: t0},
	}
}

// sortedVariables is webVariables in ListVariables' order: name, then scope.
func sortedVariables() []store.Variable {
	vs := webVariables()
	return []store.Variable{vs[1], vs[0], vs[2], vs[3]}
}

func setAll(t *testing.T, s store.Store, vs []store.Variable) {
	t.Helper()
	for _, v := range vs {
		must(t, s.SetVariable(t.Context(), v))
	}
}

func testSetAndListVariables(t *testing.T, s store.Store) {
	f := newFixture(t, s, 0)
	setAll(t, s, webVariables())
	got, err := s.ListVariables(f.ctx, "web")
	must(t, err)
	wantEqual(t, "variables", got, sortedVariables())

	// Setting the same name and scope replaces the value, sensitivity included.
	repl := store.Variable{Application: "web", Name: "DB_PASSWORD", Value: "now-plain", Scope: store.VariableScope{Role: "web"}, UpdatedAt: at(time.Hour), UpdatedBy: "admin-token:other"}
	must(t, s.SetVariable(f.ctx, repl))
	got, err = s.ListVariables(f.ctx, "web")
	must(t, err)
	want := sortedVariables()
	want[2] = repl
	wantEqual(t, "variables after replacing DB_PASSWORD", got, want)

	must(t, s.CreateApplication(f.ctx, store.Application{Name: "api", ImageRepository: "team/api"}))
	got, err = s.ListVariables(f.ctx, "api")
	must(t, err)
	if len(got) != 0 {
		t.Errorf("api has variables %+v, want none", got)
	}
	_, err = s.ListVariables(f.ctx, "nope")
	wantErr(t, err, store.ErrNotFound, `"nope"`)
}

func testSetVariableRefusals(t *testing.T, s store.Store) {
	f := newFixture(t, s, 0)
	setAll(t, s, webVariables())
	err := s.SetVariable(f.ctx, store.Variable{Application: "nope", Name: "X", Value: "1"})
	wantErr(t, err, store.ErrNotFound, `"nope"`)
	// A sensitive value in clear, or a sealed one not marked sensitive, is
	// refused and the stored value is kept.
	for _, v := range []store.Variable{
		{Application: "web", Name: "DB_PASSWORD", Sensitive: true, Value: "clear", Scope: store.VariableScope{Role: "web"}},
		{Application: "web", Name: "DB_PASSWORD", Sensitive: true, Scope: store.VariableScope{Role: "web"}},
		{Application: "web", Name: "DB_PASSWORD", Sealed: []byte{9}, Scope: store.VariableScope{Role: "web"}},
	} {
		if err := s.SetVariable(f.ctx, v); err == nil {
			t.Errorf("SetVariable(%+v) succeeded", v)
		}
	}
	got, err := s.ListVariables(f.ctx, "web")
	must(t, err)
	wantEqual(t, "variables after the refusals", got, sortedVariables())
}

func testDeleteVariable(t *testing.T, s store.Store) {
	f := newFixture(t, s, 0)
	setAll(t, s, webVariables())
	must(t, s.DeleteVariable(f.ctx, "web", "DB_HOST", store.VariableScope{Environment: "prod"}))
	got, err := s.ListVariables(f.ctx, "web")
	must(t, err)
	want := sortedVariables()
	wantEqual(t, "variables after deleting DB_HOST of prod", got, append(want[:1:1], want[2:]...))

	err = s.DeleteVariable(f.ctx, "web", "DB_HOST", store.VariableScope{Environment: "prod"})
	wantErr(t, err, store.ErrNotFound, "DB_HOST")
	err = s.DeleteVariable(f.ctx, "web", "DB_PASSWORD", store.VariableScope{})
	wantErr(t, err, store.ErrNotFound, "DB_PASSWORD")
}

func testReleaseSnapshotsVariables(t *testing.T, s store.Store) {
	f := newFixture(t, s, 0) // rel-1 is created before any variable
	setAll(t, s, webVariables())
	r := store.Release{ID: "rel-2", Application: "web", Version: "2.0.0", ImageRepository: "team/web", ImageTag: "2.0.0", CreatedAt: at(time.Second),
		Variables: []store.Variable{{Application: "web", Name: "IGNORED", Value: "x"}}}
	must(t, s.CreateRelease(f.ctx, r))
	// Later changes do not reach the release.
	must(t, s.SetVariable(f.ctx, store.Variable{Application: "web", Name: "DB_HOST", Value: "changed", UpdatedAt: at(time.Hour)}))
	must(t, s.DeleteVariable(f.ctx, "web", "DEBUG", store.VariableScope{Environment: "dev", Role: "web", Target: "host-00"}))
	must(t, s.CreateApplication(f.ctx, store.Application{Name: "api", ImageRepository: "team/api"}))
	must(t, s.SetVariable(f.ctx, store.Variable{Application: "api", Name: "API_ONLY", Value: "a", UpdatedAt: t0}))
	must(t, s.CreateRelease(f.ctx, store.Release{ID: "rel-api", Application: "api", Version: "1", ImageTag: "1", CreatedAt: at(2 * time.Second)}))

	want := sortedVariables()
	got, err := s.GetReleaseByID(f.ctx, "rel-2")
	must(t, err)
	wantEqual(t, "GetReleaseByID variables", got.Variables, want)
	got, err = s.GetRelease(f.ctx, "web", "2.0.0")
	must(t, err)
	wantEqual(t, "GetRelease variables", got.Variables, want)
	old, err := s.GetReleaseByID(f.ctx, "rel-1")
	must(t, err)
	if len(old.Variables) != 0 {
		t.Errorf("release created before the variables has %+v", old.Variables)
	}
	for _, app := range []string{"web", ""} {
		rs, err := s.ListReleases(f.ctx, app)
		must(t, err)
		for _, r := range rs {
			switch r.ID {
			case "rel-2":
				wantEqual(t, "ListReleases("+app+") rel-2 variables", r.Variables, want)
			case "rel-api":
				wantEqual(t, "ListReleases("+app+") rel-api variables", r.Variables,
					[]store.Variable{{Application: "api", Name: "API_ONLY", Value: "a", UpdatedAt: t0}})
			default:
				if len(r.Variables) != 0 {
					t.Errorf("ListReleases(%q): %s has variables %+v", app, r.ID, r.Variables)
				}
			}
		}
	}
}
