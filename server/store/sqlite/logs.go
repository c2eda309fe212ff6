package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"

	"github.com/tentacle-deploy/tentacle/server/store"
)

// A task's log is stored as chunks (task_id, start, data) that never overlap:
// an append writes only its new bytes, and a read fetches only the chunks
// its range touches, so neither costs more as the log grows.

func (s *Store) AppendTaskLog(ctx context.Context, taskID string, offset uint64, data []byte) (uint64, error) {
	end := offset + uint64(len(data))
	if end > math.MaxInt64 || end < offset {
		return 0, fmt.Errorf("task %q log: chunk at offset %d is out of range", taskID, offset)
	}
	var size uint64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT log_size FROM tasks WHERE id = ?`, taskID).Scan(&size)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("task %q: %w", taskID, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("task %q log: %w", taskID, err)
		}
		if offset > size {
			return fmt.Errorf("task %q log: chunk at offset %d, %d bytes stored: %w", taskID, offset, size, store.ErrLogGap)
		}
		if end <= size {
			return nil // all resent
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO task_log_chunks (task_id, start, data) VALUES (?, ?, ?)`,
			taskID, int64(size), data[size-offset:]); err != nil {
			return fmt.Errorf("task %q log: %w", taskID, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tasks SET log_size = ? WHERE id = ?`, int64(end), taskID); err != nil {
			return fmt.Errorf("task %q log: %w", taskID, err)
		}
		size = end
		return nil
	})
	if err != nil {
		return 0, err
	}
	return size, nil
}

func (s *Store) ReadTaskLog(ctx context.Context, taskID string, offset uint64, limit int) ([]byte, error) {
	if offset > math.MaxInt64 {
		return nil, fmt.Errorf("task %q log: offset %d is out of range", taskID, offset)
	}
	end := uint64(math.MaxInt64)
	limit = max(limit, 0)
	if uint64(limit) < end-offset {
		end = offset + uint64(limit)
	}
	// From the chunk holding offset (the last one starting at or before it)
	// up to the first chunk starting at or after end.
	rows, err := s.read.QueryContext(ctx, `SELECT start, data FROM task_log_chunks
		WHERE task_id = ?1 AND start < ?3 AND start >= coalesce((SELECT start FROM task_log_chunks
			WHERE task_id = ?1 AND start <= ?2 ORDER BY start DESC LIMIT 1), 0)
		ORDER BY start`, taskID, int64(offset), int64(end))
	if err != nil {
		return nil, fmt.Errorf("read task %q log: %w", taskID, err)
	}
	defer rows.Close()
	out := []byte{}
	for rows.Next() {
		var start uint64
		var data sql.RawBytes // valid until Next: copied by the append below
		if err := rows.Scan(&start, &data); err != nil {
			return nil, fmt.Errorf("read task %q log: %w", taskID, err)
		}
		if start < offset {
			data = data[min(offset-start, uint64(len(data))):]
		}
		out = append(out, data[:min(len(data), limit-len(out))]...)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read task %q log: %w", taskID, err)
	}
	if len(out) == 0 {
		// Tell an empty read from an unknown task.
		if _, err := s.TaskLogSize(ctx, taskID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Store) TaskLogSize(ctx context.Context, taskID string) (uint64, error) {
	var size uint64
	err := s.read.QueryRowContext(ctx, `SELECT log_size FROM tasks WHERE id = ?`, taskID).Scan(&size)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("task %q: %w", taskID, store.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("task %q log size: %w", taskID, err)
	}
	return size, nil
}
