package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/tentacle-deploy/tentacle/server/store"
)

// This file holds what admins define: environments, applications, releases.

func (s *Store) CreateEnvironment(ctx context.Context, e store.Environment) error {
	_, err := s.write.ExecContext(ctx,
		`INSERT INTO environments (name, description, created_at, auto_deploy, required_targets) VALUES (?, ?, ?, ?, ?)`,
		e.Name, e.Description, stamp(e.CreatedAt), e.AutoDeploy, e.RequiredTargets)
	if isUnique(err) {
		return fmt.Errorf("environment %q: %w", e.Name, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create environment %q: %w", e.Name, err)
	}
	return nil
}

// The lifecycle position is the creation order (rowid), counted on read.
const environmentCols = `name, description, created_at,
	(SELECT COUNT(*) FROM environments o WHERE o.rowid <= environments.rowid), auto_deploy, required_targets`

func scanEnvironment(sc scanner) (store.Environment, error) {
	var e store.Environment
	err := sc.Scan(&e.Name, &e.Description, timeCol{&e.CreatedAt}, &e.Position, &e.AutoDeploy, &e.RequiredTargets)
	return e, err
}

// UpdateEnvironment changes only the fields u sets.
func (s *Store) UpdateEnvironment(ctx context.Context, name string, u store.EnvironmentUpdate) (store.Environment, error) {
	var e store.Environment
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE environments SET
			description = coalesce(?1, description),
			auto_deploy = coalesce(?2, auto_deploy),
			required_targets = coalesce(?3, required_targets)
			WHERE name = ?4`, u.Description, u.AutoDeploy, u.RequiredTargets, name)
		if err != nil {
			return fmt.Errorf("update environment %q: %w", name, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("update environment %q: %w", name, err)
		} else if n == 0 {
			return fmt.Errorf("environment %q: %w", name, store.ErrNotFound)
		}
		e, err = getEnvironment(ctx, tx, name)
		return err
	})
	return e, err
}

func (s *Store) PreviousEnvironment(ctx context.Context, name string) (store.Environment, bool, error) {
	if _, err := s.GetEnvironment(ctx, name); err != nil {
		return store.Environment{}, false, err
	}
	e, err := scanEnvironment(s.read.QueryRowContext(ctx, `SELECT `+environmentCols+` FROM environments
		WHERE rowid < (SELECT rowid FROM environments WHERE name = ?) ORDER BY rowid DESC LIMIT 1`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Environment{}, false, nil
	}
	if err != nil {
		return store.Environment{}, false, fmt.Errorf("environment before %q: %w", name, err)
	}
	return e, true, nil
}

// ReleaseSucceededIn counts distinct targets when the environment requires
// some number of them: a partial rollout (missing-only, auto) counts too.
func (s *Store) ReleaseSucceededIn(ctx context.Context, releaseID, environment string) (bool, error) {
	var ok bool
	err := s.read.QueryRowContext(ctx, `SELECT CASE
		WHEN e.required_targets = 0 THEN EXISTS (SELECT 1 FROM deployments
			WHERE release_id = ?1 AND environment = ?2 AND state = 'succeeded')
		ELSE (SELECT COUNT(DISTINCT t.target_id) FROM tasks t JOIN deployments d ON d.id = t.deployment_id
			WHERE d.release_id = ?1 AND d.environment = ?2 AND t.state = 'succeeded') >= e.required_targets
		END FROM environments e WHERE e.name = ?2`, releaseID, environment).Scan(&ok)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("release %s in %q: %w", releaseID, environment, err)
	}
	return ok, nil
}

func (s *Store) GetEnvironment(ctx context.Context, name string) (store.Environment, error) {
	return getEnvironment(ctx, s.read, name)
}

func getEnvironment(ctx context.Context, q querier, name string) (store.Environment, error) {
	e, err := scanEnvironment(q.QueryRowContext(ctx,
		`SELECT `+environmentCols+` FROM environments WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("environment %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return e, fmt.Errorf("get environment %q: %w", name, err)
	}
	return e, nil
}

// ListEnvironments lists in creation order, which is the lifecycle order
// (dev, test, prod) for admins who create them that way.
func (s *Store) ListEnvironments(ctx context.Context) ([]store.Environment, error) {
	es, err := listRows(ctx, s.read, scanEnvironment,
		`SELECT `+environmentCols+` FROM environments ORDER BY rowid`)
	if err != nil {
		return nil, fmt.Errorf("list environments: %w", err)
	}
	return es, nil
}

func (s *Store) CreateApplication(ctx context.Context, a store.Application) error {
	spec, err := toJSON(a.RunSpec)
	if err != nil {
		return fmt.Errorf("application %q: run spec: %w", a.Name, err)
	}
	roles, err := rolesJSON(a.Roles)
	if err != nil {
		return fmt.Errorf("application %q: roles: %w", a.Name, err)
	}
	rollout, err := toJSON(a.Rollout)
	if err != nil {
		return fmt.Errorf("application %q: rollout: %w", a.Name, err)
	}
	_, err = s.write.ExecContext(ctx,
		`INSERT INTO applications (name, image_repository, run_spec, roles, created_at, rollout) VALUES (?, ?, ?, ?, ?, ?)`,
		a.Name, a.ImageRepository, spec, roles, stamp(a.CreatedAt), rollout)
	if isUnique(err) {
		return fmt.Errorf("application %q: %w", a.Name, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create application %q: %w", a.Name, err)
	}
	return nil
}

const applicationCols = `name, image_repository, run_spec, roles, created_at, rollout`

func scanApplication(sc scanner) (store.Application, error) {
	var a store.Application
	err := sc.Scan(&a.Name, &a.ImageRepository, jsonCol{&a.RunSpec}, rolesCol{&a.Roles}, timeCol{&a.CreatedAt}, jsonCol{&a.Rollout})
	return a, err
}

func (s *Store) GetApplication(ctx context.Context, name string) (store.Application, error) {
	a, err := scanApplication(s.read.QueryRowContext(ctx,
		`SELECT `+applicationCols+` FROM applications WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("application %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("get application %q: %w", name, err)
	}
	return a, nil
}

// ListApplications lists by name.
func (s *Store) ListApplications(ctx context.Context) ([]store.Application, error) {
	as, err := listRows(ctx, s.read, scanApplication,
		`SELECT `+applicationCols+` FROM applications ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list applications: %w", err)
	}
	return as, nil
}

func (s *Store) CreateRelease(ctx context.Context, r store.Release) error {
	spec, err := toJSON(r.RunSpec)
	if err != nil {
		return fmt.Errorf("release %q of %q: run spec: %w", r.Version, r.Application, err)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		ok, err := exists(ctx, tx, `SELECT 1 FROM applications WHERE name = ?`, r.Application)
		if err != nil {
			return fmt.Errorf("create release %q of %q: %w", r.Version, r.Application, err)
		}
		if !ok {
			return fmt.Errorf("application %q: %w", r.Application, store.ErrNotFound)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO releases
			(id, application, version, image_repository, image_tag, image_digest, run_spec, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.Application, r.Version, r.ImageRepository, r.ImageTag, r.ImageDigest, spec, stamp(r.CreatedAt))
		if isUnique(err) {
			return fmt.Errorf("release %q of %q: %w", r.Version, r.Application, store.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create release %q of %q: %w", r.Version, r.Application, err)
		}
		if err := snapshotVariables(ctx, tx, r.ID, r.Application); err != nil {
			return fmt.Errorf("create release %q of %q: variables: %w", r.Version, r.Application, err)
		}
		return nil
	})
}

const releaseCols = `id, application, version, image_repository, image_tag, image_digest, run_spec, created_at`

func scanRelease(sc scanner) (store.Release, error) {
	var r store.Release
	err := sc.Scan(&r.ID, &r.Application, &r.Version, &r.ImageRepository, &r.ImageTag, &r.ImageDigest,
		jsonCol{&r.RunSpec}, timeCol{&r.CreatedAt})
	return r, err
}

func (s *Store) GetRelease(ctx context.Context, application, version string) (store.Release, error) {
	r, err := scanRelease(s.read.QueryRowContext(ctx,
		`SELECT `+releaseCols+` FROM releases WHERE application = ? AND version = ?`, application, version))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("release %q of %q: %w", version, application, store.ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("get release %q of %q: %w", version, application, err)
	}
	rs := []store.Release{r}
	err = s.attachVariables(ctx, application, rs)
	return rs[0], err
}

func (s *Store) GetReleaseByID(ctx context.Context, id string) (store.Release, error) {
	r, err := scanRelease(s.read.QueryRowContext(ctx, `SELECT `+releaseCols+` FROM releases WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("release %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("get release %q: %w", id, err)
	}
	rs := []store.Release{r}
	err = s.attachVariables(ctx, r.Application, rs)
	return rs[0], err
}

// ListReleases fails with ErrNotFound for an unknown application, so a typo
// is not mistaken for "no releases yet".
func (s *Store) ListReleases(ctx context.Context, application string) ([]store.Release, error) {
	if application == "" {
		rs, err := listRows(ctx, s.read, scanRelease,
			`SELECT `+releaseCols+` FROM releases ORDER BY created_at DESC, rowid DESC`)
		if err != nil {
			return nil, fmt.Errorf("list releases: %w", err)
		}
		return rs, s.attachVariables(ctx, "", rs)
	}
	if _, err := s.GetApplication(ctx, application); err != nil {
		return nil, err
	}
	rs, err := listRows(ctx, s.read, scanRelease,
		`SELECT `+releaseCols+` FROM releases WHERE application = ? ORDER BY created_at DESC, rowid DESC`, application)
	if err != nil {
		return nil, fmt.Errorf("list releases of %q: %w", application, err)
	}
	return rs, s.attachVariables(ctx, application, rs)
}

func (s *Store) PinReleaseDigest(ctx context.Context, releaseID, digest string) (string, error) {
	if digest == "" {
		return "", fmt.Errorf("pin release %q: empty digest", releaseID)
	}
	var pinned string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// Compare-and-set: only an unpinned release takes the digest.
		if _, err := tx.ExecContext(ctx, `UPDATE releases SET image_digest = ? WHERE id = ? AND image_digest = ''`,
			digest, releaseID); err != nil {
			return fmt.Errorf("pin release %q: %w", releaseID, err)
		}
		err := tx.QueryRowContext(ctx, `SELECT image_digest FROM releases WHERE id = ?`, releaseID).Scan(&pinned)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("release %q: %w", releaseID, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("pin release %q: %w", releaseID, err)
		}
		return nil
	})
	return pinned, err
}
