// Package vars resolves an application's variables for one target: it picks
// the most specific value of each variable whose scope matches the target,
// lays the result over the run spec's env entries and substitutes ${NAME}
// references. It is pure: it knows nothing of the store or of sealing, so
// the caller opens sensitive values before calling it.
//
// Precedence (docs/VARIABLES.md has the table): a scope's specificity is the
// sum of 4 for a target, 2 for a role and 1 for an environment, so a target
// beats a role, a role beats an environment, a role and an environment
// together beat either alone, and an unscoped value (0) loses to all.
package vars

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tentacle-deploy/tentacle/internal/spec"
)

// Scope narrows where a value applies; empty fields do not narrow.
type Scope struct {
	Environment string
	Role        string
	Target      string
}

// Variable is one scoped value of a variable, its sensitive value opened.
type Variable struct {
	Name      string
	Value     string
	Sensitive bool
	Scope     Scope
}

// Target is what a scope is matched against.
type Target struct {
	Name        string
	Environment string
	Roles       []string
}

// MaxValueLen bounds a value after substitution: references that double a
// value at every step would otherwise grow it without limit.
const MaxValueLen = 1 << 20

// Matches reports whether every field the scope sets matches the target.
func (s Scope) Matches(t Target) bool {
	return (s.Environment == "" || s.Environment == t.Environment) &&
		(s.Role == "" || slices.Contains(t.Roles, s.Role)) &&
		(s.Target == "" || s.Target == t.Name)
}

// Specificity orders matching scopes: the higher wins.
func (s Scope) Specificity() int {
	n := 0
	if s.Target != "" {
		n += 4
	}
	if s.Role != "" {
		n += 2
	}
	if s.Environment != "" {
		n++
	}
	return n
}

// String names the scope as errors and tables show it.
func (s Scope) String() string {
	var parts []string
	if s.Environment != "" {
		parts = append(parts, fmt.Sprintf("environment %q", s.Environment))
	}
	if s.Role != "" {
		parts = append(parts, fmt.Sprintf("role %q", s.Role))
	}
	if s.Target != "" {
		parts = append(parts, fmt.Sprintf("target %q", s.Target))
	}
	if len(parts) == 0 {
		return "no scope"
	}
	return strings.Join(parts, ", ")
}

func compareScopes(a, b Scope) int {
	return cmp.Or(cmp.Compare(a.Environment, b.Environment), cmp.Compare(a.Role, b.Role), cmp.Compare(a.Target, b.Target))
}

// Resolve returns the container env of a target: the run spec's entries in
// their order, each replaced by the winning value of a variable of the same
// name, then the other variables by name, every ${NAME} substituted. The
// second result lists, sorted, the names whose values are sensitive: the
// sensitive variables and every entry whose value refers to one.
func Resolve(base []spec.EnvVar, vs []Variable, t Target) ([]spec.EnvVar, []string, error) {
	winners, err := pick(vs, t)
	if err != nil {
		return nil, nil, err
	}
	r := resolver{raw: map[string]string{}, sensitive: map[string]bool{}, fromVar: map[string]bool{}, secret: map[string]bool{},
		done: map[string]string{}, visiting: map[string]bool{}}
	var names []string
	for _, e := range base {
		if _, dup := r.raw[e.Name]; !dup {
			names = append(names, e.Name)
		}
		r.raw[e.Name] = e.Value
	}
	for _, v := range winners {
		if _, inBase := r.raw[v.Name]; !inBase {
			names = append(names, v.Name)
		}
		r.raw[v.Name] = v.Value
		r.sensitive[v.Name] = v.Sensitive
		r.secret[v.Name] = v.Sensitive
		r.fromVar[v.Name] = true
	}
	env := make([]spec.EnvVar, 0, len(names))
	for _, n := range names {
		v, err := r.expand(n, nil)
		if err != nil {
			return nil, nil, err
		}
		env = append(env, spec.EnvVar{Name: n, Value: v})
	}
	var sensitive []string
	for _, n := range names {
		if r.sensitive[n] {
			sensitive = append(sensitive, n)
		}
	}
	slices.Sort(sensitive)
	return env, sensitive, nil
}

// pick chooses, per name, the matching value of the highest specificity,
// sorted by name. Two matching values of equal specificity are an error.
func pick(vs []Variable, t Target) ([]Variable, error) {
	sorted := slices.Clone(vs)
	slices.SortFunc(sorted, func(a, b Variable) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), compareScopes(a.Scope, b.Scope))
	})
	var out []Variable
	for _, v := range sorted {
		if !v.Scope.Matches(t) {
			continue
		}
		if len(out) == 0 || out[len(out)-1].Name != v.Name {
			out = append(out, v)
			continue
		}
		w := &out[len(out)-1]
		switch ws, vsp := w.Scope.Specificity(), v.Scope.Specificity(); {
		case vsp > ws:
			*w = v
		case vsp == ws:
			return nil, fmt.Errorf("variable %s: the values scoped to %s and to %s both apply to target %q with equal precedence: delete one of them, or set a value scoped to target %q to decide",
				v.Name, w.Scope, v.Scope, t.Name, t.Name)
		}
	}
	return out, nil
}

type resolver struct {
	raw       map[string]string
	sensitive map[string]bool
	fromVar   map[string]bool
	// secret: the value itself is sensitive, so errors must not quote it.
	secret   map[string]bool
	done     map[string]string
	visiting map[string]bool
}

func (r *resolver) kind(name string) string {
	if r.fromVar[name] {
		return "variable"
	}
	return "run spec env entry"
}

// expand substitutes name's value, expanding what it refers to first;
// path is the chain of names that led here, for the cycle error.
func (r *resolver) expand(name string, path []string) (string, error) {
	if v, ok := r.done[name]; ok {
		return v, nil
	}
	path = append(path, name)
	r.visiting[name] = true
	defer delete(r.visiting, name)
	segs, err := parse(r.raw[name])
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", r.kind(name), name, redact(r.secret[name], err))
	}
	var b strings.Builder
	for _, s := range segs {
		if s.ref == "" {
			b.WriteString(s.lit)
			continue
		}
		if _, ok := r.raw[s.ref]; !ok {
			return "", fmt.Errorf("%s %s: %w", r.kind(name), name, redact(r.secret[name], unknownRef(s.ref)))
		}
		if r.visiting[s.ref] {
			return "", fmt.Errorf("%s %s: ${%s} makes a cycle (%s → %s): remove one of these references",
				r.kind(name), name, s.ref, strings.Join(path, " → "), s.ref)
		}
		sub, err := r.expand(s.ref, path)
		if err != nil {
			return "", err
		}
		if r.sensitive[s.ref] {
			r.sensitive[name] = true
		}
		if b.Len()+len(sub) > MaxValueLen {
			return "", fmt.Errorf("%s %s: value is longer than %d bytes after substitution: refer to fewer or shorter values", r.kind(name), name, MaxValueLen)
		}
		b.WriteString(sub)
	}
	v := b.String()
	r.done[name] = v
	return v, nil
}

// CheckReferences reports a reference that can never resolve: one to a name
// that is neither a run spec env entry nor a variable under any scope, or a
// malformed one. Cycles and equal-precedence values depend on the target
// and are found by Resolve.
func CheckReferences(base []spec.EnvVar, vs []Variable) error {
	known := map[string]bool{}
	for _, e := range base {
		known[e.Name] = true
	}
	for _, v := range vs {
		known[v.Name] = true
	}
	check := func(kind, name, value string, secret bool) error {
		refs, err := References(value)
		if err != nil {
			return fmt.Errorf("%s %s: %w", kind, name, redact(secret, err))
		}
		for _, ref := range refs {
			if !known[ref] {
				return fmt.Errorf("%s %s: %w", kind, name, redact(secret, unknownRef(ref)))
			}
		}
		return nil
	}
	for _, e := range base {
		if err := check("run spec env entry", e.Name, e.Value, false); err != nil {
			return err
		}
	}
	for _, v := range vs {
		if err := check("variable", v.Name, v.Value, v.Sensitive); err != nil {
			return fmt.Errorf("%w (the value with %s)", err, v.Scope)
		}
	}
	return nil
}

// errSensitiveReference stands for an error about a sensitive value: the
// text of a malformed or unknown reference could be part of the secret.
var errSensitiveReference = errors.New("its sensitive value has a ${...} reference that is malformed or names no variable or env entry (not shown, as the value is secret): check the value, and write $${ for a literal ${")

func redact(secret bool, err error) error {
	if secret {
		return errSensitiveReference
	}
	return err
}
