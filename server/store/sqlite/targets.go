package sqlite

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tentacle-deploy/tentacle/server/store"
)

// This file holds targets and the join tokens that enroll them.

func (s *Store) CreateJoinToken(ctx context.Context, t store.JoinToken) error {
	roles, err := rolesJSON(t.Roles)
	if err != nil {
		return fmt.Errorf("join token %q: roles: %w", t.ID, err)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		ok, err := exists(ctx, tx, `SELECT 1 FROM environments WHERE name = ?`, t.Environment)
		if err != nil {
			return fmt.Errorf("create join token %q: %w", t.ID, err)
		}
		if !ok {
			return fmt.Errorf("environment %q: %w", t.Environment, store.ErrNotFound)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO join_tokens
			(id, secret_hash, environment, roles, expires_at, uses_allowed, uses_count, created_by, created_at, revoked_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.SecretHash, t.Environment, roles, dbTime(t.ExpiresAt), t.UsesAllowed, t.UsesCount,
			t.CreatedBy, stamp(t.CreatedAt), dbTime(t.RevokedAt))
		if isUnique(err) {
			return fmt.Errorf("join token %q: %w", t.ID, store.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create join token %q: %w", t.ID, err)
		}
		return nil
	})
}

const joinTokenCols = `id, secret_hash, environment, roles, expires_at, uses_allowed, uses_count,
	created_by, created_at, revoked_at`

func scanJoinToken(sc scanner) (store.JoinToken, error) {
	var t store.JoinToken
	err := sc.Scan(&t.ID, &t.SecretHash, &t.Environment, rolesCol{&t.Roles}, timeCol{&t.ExpiresAt},
		&t.UsesAllowed, &t.UsesCount, &t.CreatedBy, timeCol{&t.CreatedAt}, timeCol{&t.RevokedAt})
	return t, err
}

func getJoinToken(ctx context.Context, q querier, id string) (store.JoinToken, error) {
	t, err := scanJoinToken(q.QueryRowContext(ctx, `SELECT `+joinTokenCols+` FROM join_tokens WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("join token %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("get join token %q: %w", id, err)
	}
	return t, nil
}

// ListJoinTokens lists oldest first.
func (s *Store) ListJoinTokens(ctx context.Context) ([]store.JoinToken, error) {
	ts, err := listRows(ctx, s.read, scanJoinToken,
		`SELECT `+joinTokenCols+` FROM join_tokens ORDER BY created_at, rowid`)
	if err != nil {
		return nil, fmt.Errorf("list join tokens: %w", err)
	}
	return ts, nil
}

// RevokeJoinToken keeps the first revocation time; a zero at means now.
func (s *Store) RevokeJoinToken(ctx context.Context, id string, at time.Time) (store.JoinToken, error) {
	var t store.JoinToken
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		found, err := revoke(ctx, tx, "join_tokens", id, at)
		if err != nil {
			return fmt.Errorf("revoke join token %q: %w", id, err)
		}
		if !found {
			return fmt.Errorf("join token %q: %w", id, store.ErrNotFound)
		}
		t, err = getJoinToken(ctx, tx, id)
		return err
	})
	return t, err
}

// revoke sets revoked_at (to at, or now when at is zero) of table's row with
// id unless it is set already, and reports whether the row exists.
func revoke(ctx context.Context, tx *sql.Tx, table, id string, at time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx,
		`UPDATE `+table+` SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`, stamp(at), id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// EnrollTarget checks the secret before revocation, expiry and uses, so only
// a holder of the secret learns a token's state: anyone else is told
// "unknown". The new target starts unrevoked, unseen and without an alert,
// whatever t says.
func (s *Store) EnrollTarget(ctx context.Context, tokenID string, secretHash []byte, now time.Time, t store.Target) (store.Target, error) {
	var stored store.Target
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		tok, err := scanJoinToken(tx.QueryRowContext(ctx,
			`SELECT `+joinTokenCols+` FROM join_tokens WHERE id = ?`, tokenID))
		unknown := fmt.Errorf("join token %q is unknown: %w", tokenID, store.ErrTokenInvalid)
		if errors.Is(err, sql.ErrNoRows) {
			return unknown
		}
		if err != nil {
			return fmt.Errorf("enroll with join token %q: %w", tokenID, err)
		}
		if len(secretHash) == 0 || subtle.ConstantTimeCompare(tok.SecretHash, secretHash) != 1 {
			return unknown
		}
		if !tok.RevokedAt.IsZero() {
			return fmt.Errorf("join token %q is revoked (since %s): %w",
				tokenID, tok.RevokedAt.Format(time.RFC3339), store.ErrTokenInvalid)
		}
		if !now.Before(tok.ExpiresAt) {
			return fmt.Errorf("join token %q expired at %s: %w",
				tokenID, tok.ExpiresAt.Format(time.RFC3339), store.ErrTokenInvalid)
		}
		if tok.UsesCount >= tok.UsesAllowed {
			return fmt.Errorf("join token %q is used up (%d of %d uses): %w",
				tokenID, tok.UsesCount, tok.UsesAllowed, store.ErrTokenInvalid)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE join_tokens SET uses_count = uses_count + 1 WHERE id = ?`, tokenID); err != nil {
			return fmt.Errorf("enroll with join token %q: %w", tokenID, err)
		}

		name, err := freeTargetName(ctx, tx, t.Name)
		if err != nil {
			return fmt.Errorf("enroll target %q: %w", t.Name, err)
		}
		roles, err := rolesJSON(tok.Roles)
		if err != nil {
			return fmt.Errorf("enroll target %q: roles: %w", t.Name, err)
		}
		enrolled := t.EnrolledAt
		if enrolled.IsZero() {
			enrolled = now
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO targets
			(id, name, environment, roles, hostname, os, arch, agent_version, docker_version,
			 cert_fingerprint, cert_ca_hash, cert_not_after, enrolled_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, name, tok.Environment, roles, t.Hostname, t.OS, t.Arch, t.AgentVersion, t.DockerVersion,
			t.CertFingerprint, t.CertCAHash, dbTime(t.CertNotAfter), stamp(enrolled))
		if isUnique(err) {
			// The name is free (we hold the write lock), so the ID is taken.
			return fmt.Errorf("target %q: %w", t.ID, store.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("enroll target %q: %w", t.Name, err)
		}
		stored, err = getTarget(ctx, tx, t.ID)
		return err
	})
	return stored, err
}

// freeTargetName returns base, or base-2, base-3, … whichever is free first.
func freeTargetName(ctx context.Context, tx *sql.Tx, base string) (string, error) {
	// One query for base and every "base-…" name: '.' sorts right after '-'.
	names, err := listRows(ctx, tx, func(sc scanner) (string, error) {
		var n string
		return n, sc.Scan(&n)
	}, `SELECT name FROM targets WHERE name = ? OR (name >= ? AND name < ?)`, base, base+"-", base+".")
	if err != nil {
		return "", err
	}
	taken := make(map[string]bool, len(names))
	for _, n := range names {
		taken[n] = true
	}
	if !taken[base] {
		return base, nil
	}
	for i := 2; ; i++ {
		if n := fmt.Sprintf("%s-%d", base, i); !taken[n] {
			return n, nil
		}
	}
}

const targetCols = `id, name, environment, roles, hostname, os, arch, agent_version, docker_version,
	cert_fingerprint, prev_cert_fingerprint, cert_ca_hash, cert_not_after, enrolled_at, last_seen_at, revoked_at, alert, alert_at, health, health_at`

func scanTarget(sc scanner) (store.Target, error) {
	var t store.Target
	err := sc.Scan(&t.ID, &t.Name, &t.Environment, rolesCol{&t.Roles}, &t.Hostname, &t.OS, &t.Arch,
		&t.AgentVersion, &t.DockerVersion, &t.CertFingerprint, &t.PrevCertFingerprint, &t.CertCAHash, timeCol{&t.CertNotAfter},
		timeCol{&t.EnrolledAt}, timeCol{&t.LastSeenAt}, timeCol{&t.RevokedAt}, &t.Alert, timeCol{&t.AlertAt},
		&t.Health, timeCol{&t.HealthAt})
	return t, err
}

func getTarget(ctx context.Context, q querier, id string) (store.Target, error) {
	t, err := scanTarget(q.QueryRowContext(ctx, `SELECT `+targetCols+` FROM targets WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("target %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("get target %q: %w", id, err)
	}
	return t, nil
}

// GetTarget returns the target, revoked or not.
func (s *Store) GetTarget(ctx context.Context, id string) (store.Target, error) {
	return getTarget(ctx, s.read, id)
}

// GetTargetByName returns the target, revoked or not.
func (s *Store) GetTargetByName(ctx context.Context, name string) (store.Target, error) {
	t, err := scanTarget(s.read.QueryRowContext(ctx, `SELECT `+targetCols+` FROM targets WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("target %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("get target %q: %w", name, err)
	}
	return t, nil
}

// RevokeTarget keeps the first revocation time; a zero at means now.
func (s *Store) RevokeTarget(ctx context.Context, id string, at time.Time) (store.Target, error) {
	var t store.Target
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		found, err := revoke(ctx, tx, "targets", id, at)
		if err != nil {
			return fmt.Errorf("revoke target %q: %w", id, err)
		}
		if !found {
			return fmt.Errorf("target %q: %w", id, store.ErrNotFound)
		}
		t, err = getTarget(ctx, tx, id)
		return err
	})
	return t, err
}

// RaiseTargetAlert replaces the target's alert, revoked or not; a zero at
// means now.
func (s *Store) RaiseTargetAlert(ctx context.Context, id, alert string, at time.Time) error {
	return s.updateTarget(ctx, "raise alert on", id, `UPDATE targets SET alert = ?, alert_at = ? WHERE id = ?`, alert, stamp(at), id)
}

// ListTargets lists by name, revoked targets included.
func (s *Store) ListTargets(ctx context.Context) ([]store.Target, error) {
	ts, err := listRows(ctx, s.read, scanTarget, `SELECT `+targetCols+` FROM targets ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list targets: %w", err)
	}
	return ts, nil
}

// ListTargetsInEnvironment lists the unrevoked targets by name; an unknown
// environment is ErrNotFound.
func (s *Store) ListTargetsInEnvironment(ctx context.Context, environment string) ([]store.Target, error) {
	if _, err := s.GetEnvironment(ctx, environment); err != nil {
		return nil, err
	}
	ts, err := listRows(ctx, s.read, scanTarget,
		`SELECT `+targetCols+` FROM targets WHERE environment = ? AND revoked_at IS NULL ORDER BY name`,
		environment)
	if err != nil {
		return nil, fmt.Errorf("list targets in %q: %w", environment, err)
	}
	return ts, nil
}

// TouchTarget moves last_seen_at; a zero at means now.
func (s *Store) TouchTarget(ctx context.Context, id string, at time.Time) error {
	return s.updateTarget(ctx, "touch", id, `UPDATE targets SET last_seen_at = MAX(COALESCE(last_seen_at, 0), ?) WHERE id = ?`, stamp(at), id)
}

// MarkTargetSeen records what the agent reported; a zero At means now.
func (s *Store) MarkTargetSeen(ctx context.Context, id string, seen store.TargetSeen) error {
	return s.updateTarget(ctx, "mark seen", id, `UPDATE targets SET hostname = ?, os = ?, arch = ?,
		agent_version = ?, docker_version = ?, last_seen_at = ? WHERE id = ?`,
		seen.Hostname, seen.OS, seen.Arch, seen.AgentVersion, seen.DockerVersion, stamp(seen.At), id)
}
