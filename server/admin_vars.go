package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tentacle-deploy/tentacle/internal/spec"
	"github.com/tentacle-deploy/tentacle/internal/vars"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
	"github.com/tentacle-deploy/tentacle/server/store"
)

// maxVariableValue bounds one value: variables are configuration, not files.
const maxVariableValue = 64 << 10

// SetVariable stores one scoped value. A sensitive value is sealed before
// it reaches the store and is never echoed, logged or audited.
func (a *admin) SetVariable(ctx context.Context, req *tentaclev1.SetVariableRequest) (*tentaclev1.SetVariableResponse, error) {
	pv := req.GetVariable()
	if pv == nil {
		return nil, invalid(errors.New("variable: required"))
	}
	app, name, sc := pv.GetApplication(), pv.GetName(), scopeFromProto(pv.GetScope())
	if err := a.validVariableKey(ctx, app, name, sc); err != nil {
		return nil, err
	}
	if err := validVariableValue(pv.GetValue(), pv.GetSensitive()); err != nil {
		return nil, invalid(err)
	}
	v := store.Variable{Application: app, Name: name, Sensitive: pv.GetSensitive(), Scope: sc,
		UpdatedAt: time.Now().UTC(), UpdatedBy: principalFrom(ctx).Name}
	if v.Sensitive {
		sealed, err := a.s.box.seal(app, name, sc, pv.GetValue())
		if err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		v.Sealed = sealed
	} else {
		v.Value = pv.GetValue()
	}
	if err := a.s.store.SetVariable(ctx, v); err != nil {
		return nil, storeErr("set variable", err)
	}
	a.s.log.Info("variable set", zap.String("app", app), zap.String("name", name), zap.String("scope", scopeString(sc)),
		zap.Bool("sensitive", v.Sensitive), zap.String("by", v.UpdatedBy))
	return &tentaclev1.SetVariableResponse{Variable: variableToProto(v)}, nil
}

// validVariableKey checks what identifies a variable: the application
// exists, the name is an env name, and the scope names an existing
// environment, a valid role and an existing target.
func (a *admin) validVariableKey(ctx context.Context, app, name string, sc store.VariableScope) error {
	if app == "" {
		return invalid(errors.New("application: required"))
	}
	if err := validVariableName(name); err != nil {
		return err
	}
	if _, err := a.s.store.GetApplication(ctx, app); err != nil {
		return storeErr("get application", err)
	}
	if sc.Environment != "" {
		if _, err := a.s.store.GetEnvironment(ctx, sc.Environment); errors.Is(err, store.ErrNotFound) {
			return invalid(fmt.Errorf("scope.environment: no environment %q: create it with `tentaclectl env create %s`, or fix the name", sc.Environment, sc.Environment))
		} else if err != nil {
			return storeErr("get environment", err)
		}
	}
	if sc.Role != "" {
		if err := spec.ValidateName("scope.role", sc.Role); err != nil {
			return invalid(err)
		}
	}
	if sc.Target != "" {
		if _, err := a.s.store.GetTargetByName(ctx, sc.Target); errors.Is(err, store.ErrNotFound) {
			return invalid(fmt.Errorf("scope.target: no target %q: see `tentaclectl targets` for the names", sc.Target))
		} else if err != nil {
			return storeErr("get target", err)
		}
	}
	return nil
}

func validVariableName(name string) error {
	if !spec.ValidEnvName(name) {
		return invalid(fmt.Errorf("name: invalid variable name %q: use letters, digits and _, not starting with a digit", name))
	}
	return nil
}

// validVariableValue checks a value's size and its ${...} references. The
// error about a sensitive value never quotes it.
func validVariableValue(value string, sensitive bool) error {
	if len(value) > maxVariableValue {
		return fmt.Errorf("value: %d bytes, at most %d: put large files in a volume instead", len(value), maxVariableValue)
	}
	if strings.ContainsRune(value, 0) {
		return errors.New("value: contains a NUL byte, which no environment variable can hold")
	}
	if _, err := vars.References(value); err != nil {
		if sensitive {
			return errors.New("value: the sensitive value has a malformed ${...} reference (not shown): close it with }, or write $${ for a literal ${")
		}
		return fmt.Errorf("value: %w", err)
	}
	return nil
}

// validEnvReferences checks the ${NAME} syntax of run spec env values; the
// names may be defined as variables later.
func validEnvReferences(env []spec.EnvVar) error {
	for i, e := range env {
		if _, err := vars.References(e.Value); err != nil {
			return fmt.Errorf("run_spec: env[%d]: value of %s: %w", i, e.Name, err)
		}
	}
	return nil
}

func (a *admin) ListVariables(ctx context.Context, req *tentaclev1.ListVariablesRequest) (*tentaclev1.ListVariablesResponse, error) {
	if req.GetApplication() == "" {
		return nil, invalid(errors.New("application: required"))
	}
	vs, err := a.s.store.ListVariables(ctx, req.GetApplication())
	if err != nil {
		return nil, storeErr("list variables", err)
	}
	return &tentaclev1.ListVariablesResponse{Variables: variablesToProto(vs)}, nil
}

func (a *admin) DeleteVariable(ctx context.Context, req *tentaclev1.DeleteVariableRequest) (*tentaclev1.DeleteVariableResponse, error) {
	app, name, sc := req.GetApplication(), req.GetName(), scopeFromProto(req.GetScope())
	if app == "" {
		return nil, invalid(errors.New("application: required"))
	}
	if err := validVariableName(name); err != nil {
		return nil, err
	}
	if err := a.s.store.DeleteVariable(ctx, app, name, sc); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, status.Errorf(codes.NotFound, "application %q has no variable %s with %s: see `tentaclectl var list %s` for the scopes it has", app, name, scopeString(sc), app)
		}
		return nil, storeErr("delete variable", err)
	}
	a.s.log.Info("variable deleted", zap.String("app", app), zap.String("name", name), zap.String("scope", scopeString(sc)),
		zap.String("by", principalFrom(ctx).Name))
	return &tentaclev1.DeleteVariableResponse{}, nil
}

// checkVariableReferences refuses a release whose variables or run spec
// env refer with ${NAME} to a name that no scope defines: no target could
// ever run it.
func (a *admin) checkVariableReferences(ctx context.Context, app store.Application) error {
	stored, err := a.s.store.ListVariables(ctx, app.Name)
	if err != nil {
		return storeErr("list variables", err)
	}
	vs, err := a.s.openVariables(stored)
	if err != nil {
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	if err := vars.CheckReferences(app.RunSpec.Env, vs); err != nil {
		return status.Errorf(codes.FailedPrecondition, "application %q: %v", app.Name, err)
	}
	return nil
}

func scopeFromProto(p *tentaclev1.VariableScope) store.VariableScope {
	return store.VariableScope{Environment: p.GetEnvironment(), Role: p.GetRole(), Target: p.GetTarget()}
}

// variableToProto never carries a sensitive value.
func variableToProto(v store.Variable) *tentaclev1.Variable {
	p := &tentaclev1.Variable{
		Application: v.Application, Name: v.Name, Sensitive: v.Sensitive, UpdatedAt: ts(v.UpdatedAt), UpdatedBy: v.UpdatedBy,
		Scope: &tentaclev1.VariableScope{Environment: v.Scope.Environment, Role: v.Scope.Role, Target: v.Scope.Target},
	}
	if !v.Sensitive {
		p.Value = v.Value
	}
	return p
}

func variablesToProto(vs []store.Variable) []*tentaclev1.Variable {
	out := make([]*tentaclev1.Variable, 0, len(vs))
	for _, v := range vs {
		out = append(out, variableToProto(v))
	}
	return out
}

// variableObject names a variable in the audit log: never its value.
func variableObject(app, name string, sc *tentaclev1.VariableScope) string {
	return fmt.Sprintf("variable/%s/%s (%s)", app, name, scopeString(scopeFromProto(sc)))
}
