package vars

import (
	"slices"
	"strings"
	"testing"

	"github.com/tentacle-deploy/tentacle/internal/spec"
)

var web1 = Target{Name: "web-1", Environment: "prod", Roles: []string{"web", "edge"}}

func v(name, value string, sc Scope) Variable { return Variable{Name: name, Value: value, Scope: sc} }

func envMap(env []spec.EnvVar) map[string]string {
	m := map[string]string{}
	for _, e := range env {
		m[e.Name] = e.Value
	}
	return m
}

func TestResolvePrecedence(t *testing.T) {
	t.Parallel()
	all := []Variable{
		v("X", "unscoped", Scope{}),
		v("X", "env", Scope{Environment: "prod"}),
		v("X", "role", Scope{Role: "web"}),
		v("X", "env+role", Scope{Environment: "prod", Role: "web"}),
		v("X", "target", Scope{Target: "web-1"}),
		v("X", "target+env", Scope{Target: "web-1", Environment: "prod"}),
	}
	// Removing the winner each time walks down the precedence order.
	want := []string{"target+env", "target", "env+role", "role", "env", "unscoped"}
	for i, w := range want {
		env, _, err := Resolve(nil, all[:len(all)-i], web1)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if got := envMap(env)["X"]; got != w {
			t.Errorf("with %d values: X = %q, want %q", len(all)-i, got, w)
		}
	}
}

func TestResolveIgnoresScopesThatDoNotMatch(t *testing.T) {
	t.Parallel()
	vs := []Variable{
		v("X", "base", Scope{}),
		v("X", "other env", Scope{Environment: "test"}),
		v("X", "other role", Scope{Role: "db"}),
		v("X", "other target", Scope{Target: "web-2"}),
		v("X", "role but other env", Scope{Role: "web", Environment: "test"}),
		v("ONLY_TEST", "t", Scope{Environment: "test"}),
	}
	env, _, err := Resolve(nil, vs, web1)
	if err != nil {
		t.Fatal(err)
	}
	if m := envMap(env); m["X"] != "base" || len(m) != 1 {
		t.Errorf("env = %v, want only X=base", env)
	}
}

func TestResolveEqualPrecedenceIsAnError(t *testing.T) {
	t.Parallel()
	vs := []Variable{v("X", "a", Scope{Role: "web"}), v("X", "b", Scope{Role: "edge"})}
	_, _, err := Resolve(nil, vs, web1)
	want := `variable X: the values scoped to role "edge" and to role "web" both apply to target "web-1" with equal precedence: delete one of them, or set a value scoped to target "web-1" to decide`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	// A more specific value decides.
	env, _, err := Resolve(nil, append(vs, v("X", "c", Scope{Target: "web-1"})), web1)
	if err != nil || envMap(env)["X"] != "c" {
		t.Fatalf("with a target value: %v, %v", env, err)
	}
}

func TestResolveOverridesRunSpecEnvInPlace(t *testing.T) {
	t.Parallel()
	base := []spec.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}}
	env, _, err := Resolve(base, []Variable{v("Z", "z", Scope{}), v("B", "var", Scope{})}, web1)
	if err != nil {
		t.Fatal(err)
	}
	want := []spec.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "var"}, {Name: "Z", Value: "z"}}
	if !slices.Equal(env, want) {
		t.Errorf("env = %v, want %v", env, want)
	}
}

func TestResolveSubstitution(t *testing.T) {
	t.Parallel()
	base := []spec.EnvVar{{Name: "URL", Value: "postgres://${USER}:${PASS}@${HOST}/db"}, {Name: "HOST", Value: "db.internal"}}
	vs := []Variable{
		v("USER", "app", Scope{}),
		{Name: "PASS", Value: "hunter2-very-secret", Sensitive: true},
		v("LITERAL", "cost $5, $${HOME} and $$", Scope{}),
		v("HOST", "db.${ENV_NAME}.internal", Scope{Environment: "prod"}),
		v("ENV_NAME", "prod", Scope{}),
	}
	env, sensitive, err := Resolve(base, vs, web1)
	if err != nil {
		t.Fatal(err)
	}
	m := envMap(env)
	if m["URL"] != "postgres://app:hunter2-very-secret@db.prod.internal/db" {
		t.Errorf("URL = %q", m["URL"])
	}
	if m["LITERAL"] != "cost $5, ${HOME} and $$" {
		t.Errorf("LITERAL = %q", m["LITERAL"])
	}
	// URL holds the password, so it is as sensitive as the password.
	if !slices.Equal(sensitive, []string{"PASS", "URL"}) {
		t.Errorf("sensitive = %v, want [PASS URL]", sensitive)
	}
}

func TestResolveErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		base []spec.EnvVar
		vs   []Variable
		want string
	}{
		{"unknown", nil, []Variable{v("A", "x${NOPE}", Scope{})},
			"variable A: ${NOPE} names no variable or env entry: define NOPE, or write $${NOPE} for a literal ${NOPE}"},
		{"unknown in run spec", []spec.EnvVar{{Name: "E", Value: "${NOPE}"}}, nil,
			"run spec env entry E: ${NOPE} names no variable or env entry: define NOPE, or write $${NOPE} for a literal ${NOPE}"},
		{"cycle", nil, []Variable{v("A", "${B}", Scope{}), v("B", "${C}", Scope{}), v("C", "${A}", Scope{})},
			"variable C: ${A} makes a cycle (A → B → C → A): remove one of these references"},
		{"self", nil, []Variable{v("A", "${A}", Scope{})},
			"variable A: ${A} makes a cycle (A → A): remove one of these references"},
		{"unterminated", nil, []Variable{v("A", "x${B", Scope{})},
			`variable A: unterminated "${" at byte 1: close it with }, or write $${ for a literal ${`},
		{"bad name", nil, []Variable{v("A", "${1B}", Scope{})},
			"variable A: invalid reference ${1B}: use a variable name (letters, digits and _, not starting with a digit), or write $${ for a literal ${"},
	} {
		_, _, err := Resolve(tc.base, tc.vs, web1)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: err = %v\nwant %s", tc.name, err, tc.want)
		}
	}
}

func TestResolveBoundsGrowth(t *testing.T) {
	t.Parallel()
	vs := []Variable{v("V0", strings.Repeat("x", 1024), Scope{})}
	for i := 1; i < 20; i++ {
		vs = append(vs, v("V"+string(rune('A'+i)), "${"+vs[i-1].Name+"}${"+vs[i-1].Name+"}", Scope{}))
	}
	_, _, err := Resolve(nil, vs, web1)
	if err == nil || !strings.Contains(err.Error(), "longer than 1048576 bytes after substitution") {
		t.Fatalf("err = %v", err)
	}
}

func TestCheckReferences(t *testing.T) {
	t.Parallel()
	vs := []Variable{v("A", "${B}", Scope{Environment: "prod"}), v("B", "b", Scope{Environment: "test"})}
	// B exists under some scope: fine, even though no single target may see both.
	if err := CheckReferences(nil, vs); err != nil {
		t.Fatal(err)
	}
	err := CheckReferences([]spec.EnvVar{{Name: "E", Value: "${A}"}}, append(vs, v("C", "${MISSING}", Scope{Role: "web"})))
	want := `variable C: ${MISSING} names no variable or env entry: define MISSING, or write $${MISSING} for a literal ${MISSING} (the value with role "web")`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
}

func TestSubstitute(t *testing.T) {
	t.Parallel()
	lookup := func(n string) (string, bool) {
		return map[string]string{"A": "1", "B": "${A}"}[n], n == "A" || n == "B"
	}
	for in, want := range map[string]string{
		"":             "",
		"plain":        "plain",
		"${A}${A}":     "11",
		"x${B}":        "x${A}", // looked-up text is not substituted again
		"$${A}":        "${A}",
		"$$":           "$$",
		"$A":           "$A",
		"a$":           "a$",
		"$}{":          "$}{",
		"pre-${A}-end": "pre-1-end",
	} {
		got, err := Substitute(in, lookup)
		if err != nil || got != want {
			t.Errorf("Substitute(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestErrorsDoNotQuoteSensitiveValues(t *testing.T) {
	t.Parallel()
	want := "variable P: its sensitive value has a ${...} reference that is malformed or names no variable or env entry (not shown, as the value is secret): check the value, and write $${ for a literal ${"
	for _, value := range []string{"pa${ss-word}", "${Secret123}", "x${"} {
		vs := []Variable{{Name: "P", Value: value, Sensitive: true}}
		if _, _, err := Resolve(nil, vs, web1); err == nil || err.Error() != want {
			t.Errorf("Resolve with P=%q: err = %v", value, err)
		}
		if err := CheckReferences(nil, vs); err == nil || err.Error() != want+" (the value with no scope)" {
			t.Errorf("CheckReferences with P=%q: err = %v", value, err)
		}
	}
}
