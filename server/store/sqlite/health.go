package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/tentacle-deploy/tentacle/server/store"
)

// This file holds what the server judges a target's health from: the
// agent's latest report and the applications deployed to the target.

// SetTargetHealth stores the report as given; a zero at means now.
func (s *Store) SetTargetHealth(ctx context.Context, id string, report []byte, at time.Time) error {
	return s.updateTarget(ctx, "set health of", id, `UPDATE targets SET health = ?, health_at = ? WHERE id = ?`, report, stamp(at), id)
}

// updateTarget runs query, an UPDATE of the target id; what names the
// change in errors. ErrNotFound when no target has the id.
func (s *Store) updateTarget(ctx context.Context, what, id, query string, args ...any) error {
	res, err := s.write.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s target %q: %w", what, id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("%s target %q: %w", what, id, err)
	} else if n == 0 {
		return fmt.Errorf("target %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// TargetApplications reads two index ranges of tasks: the newest succeeded
// task per (target, application), and the tasks under way. For one target
// the filter is a plain equality, so that SQLite uses the index on
// (target_id, state) instead of scanning every target's tasks: it runs on
// every health report.
func (s *Store) TargetApplications(ctx context.Context, targetID string) ([]store.TargetApplication, error) {
	filter := "t.target_id = ?1"
	if targetID == "" {
		filter = "?1 = ''"
	}
	apps, err := listRows(ctx, s.read, func(sc scanner) (store.TargetApplication, error) {
		var a store.TargetApplication
		var deploying int
		err := sc.Scan(&a.TargetID, &a.Application, &a.TaskID, &a.ReleaseID, &a.ReleaseVersion, &a.ImageDigest, &deploying)
		a.Deploying = deploying != 0
		return a, err
	}, `WITH succeeded AS (
			SELECT t.target_id, r.application, t.id AS task_id, r.id AS release_id, r.version, t.image_digest,
				row_number() OVER (PARTITION BY t.target_id, r.application ORDER BY t.updated_at DESC, t.rowid DESC) AS n
			FROM tasks t JOIN deployments d ON d.id = t.deployment_id JOIN releases r ON r.id = d.release_id
			WHERE t.state = 'succeeded' AND `+filter+`
		), deploying AS (
			SELECT DISTINCT t.target_id, r.application
			FROM tasks t JOIN deployments d ON d.id = t.deployment_id JOIN releases r ON r.id = d.release_id
			WHERE t.state IN ('queued', 'assigned', 'accepted', 'pulling', 'starting', 'verifying')
				AND `+filter+`
		)
		SELECT s.target_id, s.application, s.task_id, s.release_id, s.version, s.image_digest,
			EXISTS (SELECT 1 FROM deploying g WHERE g.target_id = s.target_id AND g.application = s.application)
		FROM succeeded s WHERE s.n = 1
		UNION ALL
		SELECT g.target_id, g.application, '', '', '', '', 1 FROM deploying g
		WHERE NOT EXISTS (SELECT 1 FROM succeeded s WHERE s.target_id = g.target_id AND s.application = g.application)
		ORDER BY 1, 2`, targetID)
	if err != nil {
		return nil, fmt.Errorf("applications of target %q: %w", targetID, err)
	}
	return apps, nil
}
