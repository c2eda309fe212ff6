package sqlite

import (
	"context"
	"fmt"

	"github.com/tentacle-deploy/tentacle/server/store"
)

// CountTasksByState reads the tasks_target_state index only; the server
// caches the result, so a scrape does not scan the tasks every time.
func (s *Store) CountTasksByState(ctx context.Context) (map[store.TaskState]int, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT state, COUNT(*) FROM tasks GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("count tasks by state: %w", err)
	}
	defer rows.Close()
	out := map[store.TaskState]int{}
	for rows.Next() {
		var state store.TaskState
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return nil, fmt.Errorf("count tasks by state: %w", err)
		}
		out[state] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count tasks by state: %w", err)
	}
	return out, nil
}
