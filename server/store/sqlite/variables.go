package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/tentacle-deploy/tentacle/server/store"
)

// variableCols are the columns variables and release_variables share.
const variableCols = `name, scope_environment, scope_role, scope_target, value, sensitive, sealed, updated_at, updated_by`

func scanVariable(sc scanner, lead ...any) (store.Variable, error) {
	var v store.Variable
	err := sc.Scan(append(lead, &v.Name, &v.Scope.Environment, &v.Scope.Role, &v.Scope.Target, &v.Value, &v.Sensitive,
		&v.Sealed, timeCol{&v.UpdatedAt}, &v.UpdatedBy)...)
	return v, err
}

// checkSealed keeps a sensitive value out of the database in clear: the
// schema refuses it too, this names the variable.
func checkSealed(v store.Variable) error {
	switch {
	case v.Sensitive && (v.Value != "" || len(v.Sealed) == 0):
		return fmt.Errorf("variable %s of %q: a sensitive value is stored only sealed", v.Name, v.Application)
	case !v.Sensitive && v.Sealed != nil:
		return fmt.Errorf("variable %s of %q: a sealed value must be marked sensitive", v.Name, v.Application)
	}
	return nil
}

func (s *Store) SetVariable(ctx context.Context, v store.Variable) error {
	if err := checkSealed(v); err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := applicationExists(ctx, tx, v.Application); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO variables (application, `+variableCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (application, name, scope_environment, scope_role, scope_target) DO UPDATE SET
				value = excluded.value, sensitive = excluded.sensitive, sealed = excluded.sealed,
				updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
			v.Application, v.Name, v.Scope.Environment, v.Scope.Role, v.Scope.Target, v.Value, v.Sensitive,
			v.Sealed, stamp(v.UpdatedAt), v.UpdatedBy)
		if err != nil {
			return fmt.Errorf("set variable %s of %q: %w", v.Name, v.Application, err)
		}
		return nil
	})
}

func applicationExists(ctx context.Context, q querier, name string) error {
	ok, err := exists(ctx, q, `SELECT 1 FROM applications WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("application %q: %w", name, err)
	}
	if !ok {
		return fmt.Errorf("application %q: %w", name, store.ErrNotFound)
	}
	return nil
}

func (s *Store) ListVariables(ctx context.Context, application string) ([]store.Variable, error) {
	if err := applicationExists(ctx, s.read, application); err != nil {
		return nil, err
	}
	vs, err := listRows(ctx, s.read, func(sc scanner) (store.Variable, error) { return scanVariable(sc) },
		`SELECT `+variableCols+` FROM variables WHERE application = ?
		ORDER BY name, scope_environment, scope_role, scope_target`, application)
	if err != nil {
		return nil, fmt.Errorf("list variables of %q: %w", application, err)
	}
	for i := range vs {
		vs[i].Application = application
	}
	return vs, nil
}

func (s *Store) DeleteVariable(ctx context.Context, application, name string, scope store.VariableScope) error {
	res, err := s.write.ExecContext(ctx, `DELETE FROM variables
		WHERE application = ? AND name = ? AND scope_environment = ? AND scope_role = ? AND scope_target = ?`,
		application, name, scope.Environment, scope.Role, scope.Target)
	if err != nil {
		return fmt.Errorf("delete variable %s of %q: %w", name, application, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete variable %s of %q: %w", name, application, err)
	} else if n == 0 {
		return fmt.Errorf("variable %s of %q: %w", name, application, store.ErrNotFound)
	}
	return nil
}

// snapshotVariables copies the application's variables to the release, in
// the release's transaction.
func snapshotVariables(ctx context.Context, tx *sql.Tx, releaseID, application string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO release_variables (release_id, `+variableCols+`)
		SELECT ?, `+variableCols+` FROM variables WHERE application = ?`, releaseID, application)
	return err
}

// attachVariables reads the variables of the releases, which are all
// releases of application ("": of every application), and sets Variables
// on each.
func (s *Store) attachVariables(ctx context.Context, application string, rs []store.Release) error {
	if len(rs) == 0 {
		return nil
	}
	byID := make(map[string]*store.Release, len(rs))
	for i := range rs {
		byID[rs[i].ID] = &rs[i]
	}
	query := `SELECT release_id, ` + variableCols + ` FROM release_variables`
	var args []any
	switch {
	case len(rs) == 1:
		query += ` WHERE release_id = ?`
		args = append(args, rs[0].ID)
	case application != "":
		query += ` WHERE release_id IN (SELECT id FROM releases WHERE application = ?)`
		args = append(args, application)
	}
	rows, err := s.read.QueryContext(ctx, query+` ORDER BY release_id, name, scope_environment, scope_role, scope_target`, args...)
	if err != nil {
		return fmt.Errorf("release variables: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		v, err := scanVariable(rows, &id)
		if err != nil {
			return fmt.Errorf("release variables: %w", err)
		}
		if r := byID[id]; r != nil {
			v.Application = r.Application
			r.Variables = append(r.Variables, v)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("release variables: %w", err)
	}
	return nil
}
