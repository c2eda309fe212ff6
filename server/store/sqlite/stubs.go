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

func (s *Store) FailOverdueTasks(ctx context.Context, now time.Time) ([]store.Task, error) {
	return nil, errNotImplemented
}
