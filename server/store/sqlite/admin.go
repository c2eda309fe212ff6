package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tentacle-deploy/tentacle/server/store"
)

// This file holds admin API tokens and the audit log.

func (s *Store) CreateAdminToken(ctx context.Context, t store.AdminToken) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO admin_tokens
		(id, name, hash, role, created_by, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Name, t.Hash, t.Role, t.CreatedBy, stamp(t.CreatedAt), dbTime(t.ExpiresAt), dbTime(t.RevokedAt))
	if isUnique(err) {
		return fmt.Errorf("admin token %q: %w", t.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create admin token %q: %w", t.ID, err)
	}
	return nil
}

const adminTokenCols = `id, name, hash, role, created_by, created_at, expires_at, revoked_at`

func scanAdminToken(sc scanner) (store.AdminToken, error) {
	var t store.AdminToken
	err := sc.Scan(&t.ID, &t.Name, &t.Hash, &t.Role, &t.CreatedBy,
		timeCol{&t.CreatedAt}, timeCol{&t.ExpiresAt}, timeCol{&t.RevokedAt})
	return t, err
}

// GetAdminTokenByHash returns the token even when expired or revoked: the
// caller decides, and can say "expired" or "revoked" rather than "unknown".
func (s *Store) GetAdminTokenByHash(ctx context.Context, hash []byte) (store.AdminToken, error) {
	t, err := scanAdminToken(s.read.QueryRowContext(ctx,
		`SELECT `+adminTokenCols+` FROM admin_tokens WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("admin token: %w", store.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("get admin token: %w", err)
	}
	return t, nil
}

func (s *Store) CountAdminTokens(ctx context.Context) (int, error) {
	var n int
	if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM admin_tokens`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count admin tokens: %w", err)
	}
	return n, nil
}

// ListAdminTokens lists oldest first, revoked tokens included.
func (s *Store) ListAdminTokens(ctx context.Context) ([]store.AdminToken, error) {
	ts, err := listRows(ctx, s.read, scanAdminToken,
		`SELECT `+adminTokenCols+` FROM admin_tokens ORDER BY created_at, rowid`)
	if err != nil {
		return nil, fmt.Errorf("list admin tokens: %w", err)
	}
	return ts, nil
}

// RevokeAdminToken revokes the token with ID idOrName, else the one named
// idOrName. Names need not be unique: of several tokens with the name, the
// only unrevoked one is meant; when that does not single one out the call
// fails with ErrConflict, listing the IDs to revoke by instead. A zero at
// means now; revoking again keeps the first time.
func (s *Store) RevokeAdminToken(ctx context.Context, idOrName string, at time.Time) (store.AdminToken, error) {
	var t store.AdminToken
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		id, err := adminTokenID(ctx, tx, idOrName)
		if err != nil {
			return err
		}
		if _, err := revoke(ctx, tx, "admin_tokens", id, at); err != nil {
			return fmt.Errorf("revoke admin token %q: %w", idOrName, err)
		}
		t, err = scanAdminToken(tx.QueryRowContext(ctx, `SELECT `+adminTokenCols+` FROM admin_tokens WHERE id = ?`, id))
		if err != nil {
			return fmt.Errorf("revoke admin token %q: %w", idOrName, err)
		}
		return nil
	})
	return t, err
}

// adminTokenID resolves RevokeAdminToken's idOrName to one token's ID.
func adminTokenID(ctx context.Context, tx *sql.Tx, idOrName string) (string, error) {
	ok, err := exists(ctx, tx, `SELECT 1 FROM admin_tokens WHERE id = ?`, idOrName)
	if err != nil {
		return "", fmt.Errorf("revoke admin token %q: %w", idOrName, err)
	}
	if ok {
		return idOrName, nil
	}
	type match struct {
		id      string
		revoked bool
	}
	ms, err := listRows(ctx, tx, func(sc scanner) (match, error) {
		var m match
		return m, sc.Scan(&m.id, &m.revoked)
	}, `SELECT id, revoked_at IS NOT NULL FROM admin_tokens WHERE name = ? ORDER BY created_at, rowid`, idOrName)
	if err != nil {
		return "", fmt.Errorf("revoke admin token %q: %w", idOrName, err)
	}
	if len(ms) == 1 {
		return ms[0].id, nil
	}
	if len(ms) == 0 {
		return "", fmt.Errorf("admin token %q (no token has this ID or name): %w", idOrName, store.ErrNotFound)
	}
	var ids, live []string
	for _, m := range ms {
		ids = append(ids, m.id)
		if !m.revoked {
			live = append(live, m.id)
		}
	}
	if len(live) == 1 {
		return live[0], nil
	}
	return "", fmt.Errorf("admin token name %q is ambiguous (%d unrevoked of %d tokens: %s), revoke by ID: %w",
		idOrName, len(live), len(ms), strings.Join(ids, ", "), store.ErrConflict)
}

// AppendAudit stores r with a new ID; a zero At means now. The table's
// triggers refuse any UPDATE or DELETE, whoever runs it.
func (s *Store) AppendAudit(ctx context.Context, r store.AuditRecord) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO audit_records (at, actor, action, object, peer, outcome)
		VALUES (?, ?, ?, ?, ?, ?)`, stamp(r.At), r.Actor, r.Action, r.Object, r.Peer, r.Outcome)
	if err != nil {
		return fmt.Errorf("append audit record %s %s: %w", r.Actor, r.Action, err)
	}
	return nil
}

const auditCols = `id, at, actor, action, object, peer, outcome`

func scanAudit(sc scanner) (store.AuditRecord, error) {
	var r store.AuditRecord
	err := sc.Scan(&r.ID, timeCol{&r.At}, &r.Actor, &r.Action, &r.Object, &r.Peer, &r.Outcome)
	return r, err
}

// ListAudit orders by At, then by ID among records of one instant; with
// limit > 0 it takes the newest limit records in that order.
func (s *Store) ListAudit(ctx context.Context, since time.Time, limit int) ([]store.AuditRecord, error) {
	where, args := "", []any{}
	if !since.IsZero() {
		where, args = ` WHERE at >= ?`, append(args, since.UnixMicro())
	}
	query := `SELECT ` + auditCols + ` FROM audit_records` + where + ` ORDER BY at, id`
	if limit > 0 {
		query = `SELECT ` + auditCols + ` FROM (SELECT ` + auditCols + ` FROM audit_records` + where +
			` ORDER BY at DESC, id DESC LIMIT ?) ORDER BY at, id`
		args = append(args, limit)
	}
	rs, err := listRows(ctx, s.read, scanAudit, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit records: %w", err)
	}
	return rs, nil
}
