package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/tentacle-deploy/tentacle/server/store"
)

// This file holds deployments, their tasks and the tasks' events.

// CreateDeployment takes Application and ReleaseVersion from the release,
// not from d. A deployment without a State is running; a task without one
// is queued.
func (s *Store) CreateDeployment(ctx context.Context, d store.Deployment, tasks []store.Task) error {
	if d.State == "" {
		d.State = store.DeploymentRunning
	}
	if d.Kind == "" {
		d.Kind = store.KindDeploy
	}
	created := stamp(d.CreatedAt)
	rollout, err := toJSON(d.Rollout)
	if err != nil {
		return fmt.Errorf("create deployment %q: rollout: %w", d.ID, err)
	}
	skipped, err := rolesJSON(d.SkippedTargets)
	if err != nil {
		return fmt.Errorf("create deployment %q: skipped targets: %w", d.ID, err)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		ok, err := exists(ctx, tx, `SELECT 1 FROM releases WHERE id = ?`, d.ReleaseID)
		if err != nil {
			return fmt.Errorf("create deployment %q: %w", d.ID, err)
		}
		if !ok {
			return fmt.Errorf("release %q: %w", d.ReleaseID, store.ErrNotFound)
		}
		ok, err = exists(ctx, tx, `SELECT 1 FROM environments WHERE name = ?`, d.Environment)
		if err != nil {
			return fmt.Errorf("create deployment %q: %w", d.ID, err)
		}
		if !ok {
			return fmt.Errorf("environment %q: %w", d.Environment, store.ErrNotFound)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO deployments
			(id, release_id, environment, state, created_by, created_at, finished_at, rollout, kind, cancel_requested_at, deadline_at, skipped_targets)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			d.ID, d.ReleaseID, d.Environment, d.State, d.CreatedBy, created, dbTime(d.FinishedAt),
			rollout, d.Kind, dbTime(d.CancelRequestedAt), dbTime(d.DeadlineAt), skipped)
		if isUnique(err) {
			return fmt.Errorf("deployment %q: %w", d.ID, store.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create deployment %q: %w", d.ID, err)
		}
		anyEnded := false
		for _, t := range tasks {
			if err := insertTask(ctx, tx, d.ID, created, t); err != nil {
				return err
			}
			anyEnded = anyEnded || t.State.Terminal()
		}
		// Tasks failed at creation (unavailable targets: fail) may be all
		// the deployment has: it then ends here, as when its last task ends.
		if anyEnded && d.State == store.DeploymentRunning {
			return finishDeployment(ctx, tx, d.ID, created)
		}
		return nil
	})
}

func insertTask(ctx context.Context, tx *sql.Tx, deploymentID string, deploymentCreated int64, t store.Task) error {
	if t.DeploymentID != "" && t.DeploymentID != deploymentID {
		return fmt.Errorf("task %q belongs to deployment %q, not %q", t.ID, t.DeploymentID, deploymentID)
	}
	if t.State == "" {
		t.State = store.TaskQueued
	}
	if t.Wave == 0 {
		t.Wave = 1
	}
	created := deploymentCreated
	if !t.CreatedAt.IsZero() {
		created = t.CreatedAt.UnixMicro()
	}
	ok, err := exists(ctx, tx, `SELECT 1 FROM targets WHERE id = ?`, t.TargetID)
	if err != nil {
		return fmt.Errorf("create task %q: %w", t.ID, err)
	}
	if !ok {
		return fmt.Errorf("target %q: %w", t.TargetID, store.ErrNotFound)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO tasks
		(id, deployment_id, target_id, state, message, failure_kind, image_digest, container_id, created_at, updated_at, wave)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, deploymentID, t.TargetID, t.State, t.Message, t.FailureKind, t.ImageDigest, t.ContainerID, created, created, t.Wave)
	if isUnique(err) {
		return fmt.Errorf("task %q (target %q): %w", t.ID, t.TargetID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create task %q: %w", t.ID, err)
	}
	return nil
}

const deploymentSelect = `SELECT d.id, d.release_id, r.application, r.version, d.environment, d.state,
	d.created_by, d.created_at, d.finished_at, d.rollout, d.kind, d.cancel_requested_at, d.deadline_at, d.skipped_targets
	FROM deployments d JOIN releases r ON r.id = d.release_id`

func scanDeployment(sc scanner) (store.Deployment, error) {
	var d store.Deployment
	err := sc.Scan(&d.ID, &d.ReleaseID, &d.Application, &d.ReleaseVersion, &d.Environment, &d.State,
		&d.CreatedBy, timeCol{&d.CreatedAt}, timeCol{&d.FinishedAt}, jsonCol{&d.Rollout}, &d.Kind, timeCol{&d.CancelRequestedAt}, timeCol{&d.DeadlineAt},
		rolesCol{&d.SkippedTargets})
	return d, err
}

func getDeployment(ctx context.Context, q querier, id string) (store.Deployment, error) {
	d, err := scanDeployment(q.QueryRowContext(ctx, deploymentSelect+` WHERE d.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("deployment %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return d, fmt.Errorf("get deployment %q: %w", id, err)
	}
	return d, nil
}

func (s *Store) GetDeployment(ctx context.Context, id string) (store.Deployment, error) {
	return getDeployment(ctx, s.read, id)
}

// ListDeployments filters without checking that the application or
// environment exists: a filter that matches nothing gives an empty list.
func (s *Store) ListDeployments(ctx context.Context, f store.DeploymentFilter) ([]store.Deployment, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	ds, err := listRows(ctx, s.read, scanDeployment, deploymentSelect+`
		WHERE (?1 = '' OR r.application = ?1) AND (?2 = '' OR d.environment = ?2)
		ORDER BY d.created_at DESC, d.rowid DESC LIMIT ?3`,
		f.Application, f.Environment, limit)
	if err != nil {
		return nil, fmt.Errorf("list deployments: %w", err)
	}
	return ds, nil
}

const taskSelect = `SELECT t.id, t.deployment_id, t.target_id, g.name, t.state, t.message, t.failure_kind,
	t.image_digest, t.container_id, t.last_event_seq, t.final_log_bytes, t.created_at, t.updated_at,
	t.wave, t.progress_bytes, t.progress_total_bytes
	FROM tasks t JOIN targets g ON g.id = t.target_id`

func scanTask(sc scanner) (store.Task, error) {
	var t store.Task
	err := sc.Scan(&t.ID, &t.DeploymentID, &t.TargetID, &t.TargetName, &t.State, &t.Message, &t.FailureKind,
		&t.ImageDigest, &t.ContainerID, &t.LastEventSeq, &t.FinalLogBytes,
		timeCol{&t.CreatedAt}, timeCol{&t.UpdatedAt}, &t.Wave, &t.ProgressBytes, &t.ProgressTotalBytes)
	return t, err
}

func getTask(ctx context.Context, q querier, id string) (store.Task, error) {
	t, err := scanTask(q.QueryRowContext(ctx, taskSelect+` WHERE t.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("task %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("get task %q: %w", id, err)
	}
	return t, nil
}

func (s *Store) GetTask(ctx context.Context, id string) (store.Task, error) {
	return getTask(ctx, s.read, id)
}

// ListTasks fails with ErrNotFound for an unknown deployment.
func (s *Store) ListTasks(ctx context.Context, deploymentID string) ([]store.Task, error) {
	if deploymentID == "" {
		ts, err := listRows(ctx, s.read, scanTask, taskSelect+` ORDER BY t.created_at DESC, t.rowid DESC`)
		if err != nil {
			return nil, fmt.Errorf("list tasks: %w", err)
		}
		return ts, nil
	}
	if _, err := s.GetDeployment(ctx, deploymentID); err != nil {
		return nil, err
	}
	ts, err := listRows(ctx, s.read, scanTask,
		taskSelect+` WHERE t.deployment_id = ? ORDER BY g.name, t.id`, deploymentID)
	if err != nil {
		return nil, fmt.Errorf("list tasks of deployment %q: %w", deploymentID, err)
	}
	return ts, nil
}

// PendingTasksForTarget fails with ErrNotFound for an unknown target.
func (s *Store) PendingTasksForTarget(ctx context.Context, targetID string) ([]store.Task, error) {
	if _, err := s.GetTarget(ctx, targetID); err != nil {
		return nil, err
	}
	ts, err := listRows(ctx, s.read, scanTask, taskSelect+`
		WHERE t.target_id = ? AND t.state IN ('queued', 'assigned')
		ORDER BY t.created_at, t.rowid`, targetID)
	if err != nil {
		return nil, fmt.Errorf("list pending tasks of target %q: %w", targetID, err)
	}
	return ts, nil
}

func (s *Store) MarkTaskAssigned(ctx context.Context, taskID string) error {
	return s.moveTask(ctx, taskID, store.TaskAssigned, `'queued'`)
}

func (s *Store) MarkTaskAccepted(ctx context.Context, taskID string) error {
	return s.moveTask(ctx, taskID, store.TaskAccepted, `'queued', 'assigned'`)
}

// moveTask sets the task's state to to when it is in one of from (an SQL
// list of constants), and leaves it alone otherwise.
func (s *Store) moveTask(ctx context.Context, taskID string, to store.TaskState, from string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tasks SET state = ?, updated_at = ?
			WHERE id = ? AND state IN (`+from+`)`, to, time.Now().UnixMicro(), taskID)
		if err != nil {
			return fmt.Errorf("mark task %q %s: %w", taskID, to, err)
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		ok, err := exists(ctx, tx, `SELECT 1 FROM tasks WHERE id = ?`, taskID)
		if err != nil {
			return fmt.Errorf("mark task %q %s: %w", taskID, to, err)
		}
		if !ok {
			return fmt.Errorf("task %q: %w", taskID, store.ErrNotFound)
		}
		return nil
	})
}

// AppendTaskEvent: an event with an empty State, ImageDigest or ContainerID
// leaves the task's value as it is (progress events repeat neither).
func (s *Store) AppendTaskEvent(ctx context.Context, e store.TaskEvent) (bool, error) {
	if e.Sequence > math.MaxInt64 {
		return false, fmt.Errorf("task %q event %d: sequence out of range", e.TaskID, e.Sequence)
	}
	if e.State != "" && !knownTaskStates[e.State] {
		return false, fmt.Errorf("task %q event %d: unknown state %q", e.TaskID, e.Sequence, e.State)
	}
	now := time.Now().UnixMicro()
	var inserted bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var deploymentID string
		var state store.TaskState
		var lastSeq uint64
		err := tx.QueryRowContext(ctx, `SELECT deployment_id, state, last_event_seq FROM tasks WHERE id = ?`, e.TaskID).
			Scan(&deploymentID, &state, &lastSeq)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("task %q: %w", e.TaskID, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("task %q event %d: %w", e.TaskID, e.Sequence, err)
		}
		occurred := now
		if !e.OccurredAt.IsZero() {
			occurred = e.OccurredAt.UnixMicro()
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO task_events
			(task_id, deployment_id, seq, state, message, image_digest, container_id, failure_kind, log_bytes, occurred_at,
			progress_bytes, progress_total_bytes)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (task_id, seq) DO NOTHING`,
			e.TaskID, deploymentID, int64(e.Sequence), e.State, e.Message, e.ImageDigest, e.ContainerID,
			e.FailureKind, e.LogBytes, occurred, int64(e.ProgressBytes), int64(e.ProgressTotalBytes))
		if err != nil {
			return fmt.Errorf("task %q event %d: %w", e.TaskID, e.Sequence, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err // a replay: stored before, changes nothing
		}
		inserted = true
		if e.Sequence <= lastSeq || state.Terminal() {
			return nil
		}
		next := state
		if e.State != "" {
			next = e.State
		}
		_, err = tx.ExecContext(ctx, `UPDATE tasks SET state = ?, message = ?, failure_kind = ?,
			image_digest = CASE WHEN ?4 = '' THEN image_digest ELSE ?4 END,
			container_id = CASE WHEN ?5 = '' THEN container_id ELSE ?5 END,
			last_event_seq = ?6,
			final_log_bytes = CASE WHEN ?7 THEN ?8 ELSE final_log_bytes END,
			updated_at = ?9,
			progress_bytes = CASE WHEN ?11 = 0 AND ?12 = 0 THEN progress_bytes ELSE ?11 END,
			progress_total_bytes = CASE WHEN ?11 = 0 AND ?12 = 0 THEN progress_total_bytes ELSE ?12 END
			WHERE id = ?10`,
			next, e.Message, e.FailureKind, e.ImageDigest, e.ContainerID, int64(e.Sequence),
			next.Terminal(), e.LogBytes, now, e.TaskID, int64(e.ProgressBytes), int64(e.ProgressTotalBytes))
		if err != nil {
			return fmt.Errorf("task %q event %d: %w", e.TaskID, e.Sequence, err)
		}
		if !next.Terminal() {
			return nil
		}
		return finishDeployment(ctx, tx, deploymentID, now)
	})
	return inserted, err
}

// finishDeployment ends a running deployment whose tasks are all terminal:
// cancelled if a cancel was requested, succeeded if every task succeeded,
// else failed. The write lock the caller's transaction holds makes "all"
// exact when tasks finish concurrently.
func finishDeployment(ctx context.Context, tx *sql.Tx, deploymentID string, now int64) error {
	_, err := tx.ExecContext(ctx, `UPDATE deployments SET
		state = CASE
			WHEN cancel_requested_at IS NOT NULL THEN 'cancelled'
			WHEN EXISTS (SELECT 1 FROM tasks WHERE deployment_id = ?1 AND state <> 'succeeded') THEN 'failed'
			ELSE 'succeeded' END,
		finished_at = ?2
		WHERE id = ?1 AND state = 'running' AND NOT EXISTS (SELECT 1 FROM tasks
			WHERE deployment_id = ?1 AND state NOT IN ('succeeded', 'failed', 'cancelled'))`,
		deploymentID, now)
	if err != nil {
		return fmt.Errorf("finish deployment %q: %w", deploymentID, err)
	}
	return nil
}

var knownTaskStates = map[store.TaskState]bool{
	store.TaskWaiting: true, store.TaskQueued: true, store.TaskAssigned: true, store.TaskAccepted: true,
	store.TaskPulling: true, store.TaskStarting: true, store.TaskVerifying: true,
	store.TaskSucceeded: true, store.TaskFailed: true, store.TaskCancelled: true,
}

const eventCols = `id, task_id, seq, state, message, image_digest, container_id, failure_kind, log_bytes, occurred_at,
	progress_bytes, progress_total_bytes`

func scanEvent(sc scanner) (store.TaskEvent, error) {
	var e store.TaskEvent
	err := sc.Scan(&e.ID, &e.TaskID, &e.Sequence, &e.State, &e.Message, &e.ImageDigest, &e.ContainerID,
		&e.FailureKind, &e.LogBytes, timeCol{&e.OccurredAt}, &e.ProgressBytes, &e.ProgressTotalBytes)
	return e, err
}

// ListDeploymentEvents fails with ErrNotFound for an unknown deployment.
func (s *Store) ListDeploymentEvents(ctx context.Context, deploymentID string, afterID int64) ([]store.TaskEvent, error) {
	if _, err := s.GetDeployment(ctx, deploymentID); err != nil {
		return nil, err
	}
	es, err := listRows(ctx, s.read, scanEvent, `SELECT `+eventCols+` FROM task_events
		WHERE deployment_id = ? AND id > ? ORDER BY id`, deploymentID, afterID)
	if err != nil {
		return nil, fmt.Errorf("list events of deployment %q: %w", deploymentID, err)
	}
	return es, nil
}
