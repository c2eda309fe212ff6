package sqlite

import (
	"context"
	"errors"

	"github.com/tentacle-deploy/tentacle/server/store"
)

// Placeholders for methods being built; each is replaced by its real
// implementation in its own file.

var errNotImplemented = errors.New("not implemented yet")

func (s *Store) SetVariable(ctx context.Context, v store.Variable) error { return errNotImplemented }

func (s *Store) ListVariables(ctx context.Context, application string) ([]store.Variable, error) {
	return nil, errNotImplemented
}

func (s *Store) DeleteVariable(ctx context.Context, application, name string, scope store.VariableScope) error {
	return errNotImplemented
}
