package server

import (
	"context"
	"fmt"

	"github.com/tentacle-deploy/tentacle/internal/spec"
	"github.com/tentacle-deploy/tentacle/internal/vars"
	"github.com/tentacle-deploy/tentacle/server/store"
)

// resolveTaskSpec returns the run spec a target runs for the release: the
// release's run spec with its variables resolved for the target, and the
// names of the env entries whose values are sensitive. An error names the
// variable and the fix (an unknown ${NAME}, a cycle, two values of equal
// precedence).
func (s *Server) resolveTaskSpec(ctx context.Context, r store.Release, t store.Target) (spec.RunSpec, []string, error) {
	vs, err := s.openVariables(r.Variables)
	if err != nil {
		return spec.RunSpec{}, nil, err
	}
	env, sensitive, err := vars.Resolve(r.RunSpec.Env, vs, vars.Target{Name: t.Name, Environment: t.Environment, Roles: t.Roles})
	if err != nil {
		return spec.RunSpec{}, nil, fmt.Errorf("release %q of %q on target %s: %w", r.Version, r.Application, t.Name, err)
	}
	rs := r.RunSpec
	rs.Env = env
	return rs, sensitive, nil
}

// openVariables converts stored variables for internal/vars, opening the
// sealed values of the sensitive ones.
func (s *Server) openVariables(stored []store.Variable) ([]vars.Variable, error) {
	out := make([]vars.Variable, 0, len(stored))
	for _, v := range stored {
		value := v.Value
		if v.Sensitive {
			var err error
			if value, err = s.box.open(v.Application, v.Name, v.Scope, v.Sealed); err != nil {
				return nil, err
			}
		}
		out = append(out, vars.Variable{Name: v.Name, Value: value, Sensitive: v.Sensitive, Scope: vars.Scope(v.Scope)})
	}
	return out, nil
}

// scopeString names a scope in messages: `environment "prod", role "web"`.
func scopeString(sc store.VariableScope) string { return vars.Scope(sc).String() }

// sensitiveValues returns the values of the named env entries: what must
// never be stored or shown in clear.
func sensitiveValues(env []spec.EnvVar, names []string) []string {
	var out []string
	for _, e := range env {
		for _, n := range names {
			if e.Name == n && e.Value != "" {
				out = append(out, e.Value)
			}
		}
	}
	return out
}
