package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/tentacle-deploy/tentacle/server/store"
)

// This file holds what moves a deployment along besides its tasks' events:
// waves, halts and cancels.

func (s *Store) ListRunningDeployments(ctx context.Context) ([]store.Deployment, error) {
	ds, err := listRows(ctx, s.read, scanDeployment, deploymentSelect+`
		WHERE d.state = 'running' ORDER BY d.created_at, d.rowid`)
	if err != nil {
		return nil, fmt.Errorf("list running deployments: %w", err)
	}
	return ds, nil
}

// StartWave fails with ErrNotFound for an unknown deployment.
func (s *Store) StartWave(ctx context.Context, deploymentID string, wave int) ([]store.Task, error) {
	var moved []store.Task
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		ids, err := taskIDsIn(ctx, tx, deploymentID, `wave = ? AND state = 'waiting'`, wave)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tasks SET state = 'queued', updated_at = ?
			WHERE deployment_id = ? AND wave = ? AND state = 'waiting'`,
			time.Now().UnixMicro(), deploymentID, wave); err != nil {
			return fmt.Errorf("start wave %d of deployment %q: %w", wave, deploymentID, err)
		}
		moved, err = tasksByID(ctx, tx, ids)
		return err
	})
	return moved, err
}

// HaltDeployment fails with ErrNotFound for an unknown deployment. The
// halted tasks' logs are complete and empty.
func (s *Store) HaltDeployment(ctx context.Context, deploymentID, message string) ([]store.Task, error) {
	var halted []store.Task
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		ids, err := taskIDsIn(ctx, tx, deploymentID, `state IN ('waiting', 'queued')`)
		if err != nil {
			return err
		}
		now := time.Now().UnixMicro()
		if _, err := tx.ExecContext(ctx, `UPDATE tasks SET state = 'cancelled', message = ?, failure_kind = 'halted',
			final_log_bytes = log_size, updated_at = ?
			WHERE deployment_id = ? AND state IN ('waiting', 'queued')`, message, now, deploymentID); err != nil {
			return fmt.Errorf("halt deployment %q: %w", deploymentID, err)
		}
		if halted, err = tasksByID(ctx, tx, ids); err != nil {
			return err
		}
		return finishDeployment(ctx, tx, deploymentID, now)
	})
	return halted, err
}

func (s *Store) RequestCancelDeployment(ctx context.Context, deploymentID string, at time.Time) (store.Deployment, error) {
	var d store.Deployment
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE deployments SET cancel_requested_at = ?
			WHERE id = ? AND state = 'running' AND cancel_requested_at IS NULL`,
			stamp(at), deploymentID); err != nil {
			return fmt.Errorf("cancel deployment %q: %w", deploymentID, err)
		}
		var err error
		d, err = getDeployment(ctx, tx, deploymentID)
		return err
	})
	return d, err
}

// taskIDsIn lists the IDs of the deployment's tasks matching cond (SQL with
// args), by target name; ErrNotFound when the deployment does not exist.
func taskIDsIn(ctx context.Context, tx *sql.Tx, deploymentID, cond string, args ...any) ([]string, error) {
	if _, err := getDeployment(ctx, tx, deploymentID); err != nil {
		return nil, err
	}
	ids, err := listRows(ctx, tx, func(sc scanner) (string, error) {
		var id string
		return id, sc.Scan(&id)
	}, `SELECT t.id FROM tasks t JOIN targets g ON g.id = t.target_id
		WHERE t.deployment_id = ? AND `+cond+` ORDER BY g.name, t.id`, append([]any{deploymentID}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("tasks of deployment %q: %w", deploymentID, err)
	}
	return ids, nil
}

func tasksByID(ctx context.Context, q querier, ids []string) ([]store.Task, error) {
	out := make([]store.Task, 0, len(ids))
	for _, id := range ids {
		t, err := getTask(ctx, q, id)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// FailOverdueTasks fails waiting tasks too: a later wave that has not
// started by the deadline could only start past it. The failed tasks'
// logs are complete as they are (empty, unless an agent sent some).
func (s *Store) FailOverdueTasks(ctx context.Context, now time.Time) ([]store.Task, error) {
	type overdue struct {
		id, deploymentID, target string
		state                    store.TaskState
		deadline                 time.Time
	}
	var failed []store.Task
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		due, err := listRows(ctx, tx, func(sc scanner) (overdue, error) {
			var o overdue
			return o, sc.Scan(&o.id, &o.deploymentID, &o.target, &o.state, timeCol{&o.deadline})
		}, `SELECT t.id, d.id, g.name, t.state, d.deadline_at
			FROM deployments d JOIN tasks t ON t.deployment_id = d.id JOIN targets g ON g.id = t.target_id
			WHERE d.state = 'running' AND d.deadline_at IS NOT NULL AND d.deadline_at <= ?
				AND t.state IN ('waiting', 'queued', 'assigned')
			ORDER BY d.created_at, d.rowid, g.name, t.id`, now.UnixMicro())
		if err != nil {
			return fmt.Errorf("overdue tasks: %w", err)
		}
		stamp := time.Now().UnixMicro()
		ids := make([]string, 0, len(due))
		deployments := map[string]bool{}
		for _, o := range due {
			deadline := o.deadline.UTC().Format(time.RFC3339)
			msg := fmt.Sprintf("target %s had no session before the deployment's deadline (%s)", o.target, deadline)
			if o.state == store.TaskWaiting {
				msg = fmt.Sprintf("the deployment's deadline (%s) passed before the wave of target %s started", deadline, o.target)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE tasks SET state = 'failed', message = ?, failure_kind = 'target_unavailable',
				final_log_bytes = log_size, updated_at = ? WHERE id = ?`, msg, stamp, o.id); err != nil {
				return fmt.Errorf("fail overdue task %q: %w", o.id, err)
			}
			ids = append(ids, o.id)
			deployments[o.deploymentID] = true
		}
		for id := range deployments {
			if err := finishDeployment(ctx, tx, id, stamp); err != nil {
				return err
			}
		}
		failed, err = tasksByID(ctx, tx, ids)
		return err
	})
	return failed, err
}
