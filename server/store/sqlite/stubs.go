package sqlite

import (
	"context"
	"errors"
	"time"

	"github.com/tentacle-deploy/tentacle/server/store"
)

// Placeholders for methods being built; each is replaced by its real
// implementation in its own file.

var errNotImplemented = errors.New("not implemented yet")

func (s *Store) UpdateEnvironment(ctx context.Context, name string, u store.EnvironmentUpdate) (store.Environment, error) {
	return store.Environment{}, errNotImplemented
}

func (s *Store) ListRunningDeployments(ctx context.Context) ([]store.Deployment, error) {
	return nil, errNotImplemented
}

func (s *Store) StartWave(ctx context.Context, deploymentID string, wave int) ([]store.Task, error) {
	return nil, errNotImplemented
}

func (s *Store) HaltDeployment(ctx context.Context, deploymentID, message string) ([]store.Task, error) {
	return nil, errNotImplemented
}

func (s *Store) RequestCancelDeployment(ctx context.Context, deploymentID string, at time.Time) (store.Deployment, error) {
	return store.Deployment{}, errNotImplemented
}
