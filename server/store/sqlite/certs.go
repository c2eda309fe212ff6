package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/tentacle-deploy/tentacle/server/store"
)

// RotateTargetCertificate makes newFingerprint current and keeps the one the
// renewal was made with as previous, so an agent that crashed before saving
// its new certificate still gets in with the old one.
func (s *Store) RotateTargetCertificate(ctx context.Context, id, presentedFingerprint, newFingerprint, caHash string, notAfter time.Time) (store.Target, error) {
	var t store.Target
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE targets SET cert_fingerprint = ?, prev_cert_fingerprint = ?, cert_ca_hash = ?, cert_not_after = ? WHERE id = ?`,
			newFingerprint, presentedFingerprint, caHash, stamp(notAfter), id)
		if err != nil {
			return fmt.Errorf("rotate certificate of target %q: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("target %q: %w", id, store.ErrNotFound)
		}
		t, err = getTarget(ctx, tx, id)
		return err
	})
	return t, err
}

// ConfirmTargetCertificate forgets the previous certificate.
func (s *Store) ConfirmTargetCertificate(ctx context.Context, id string) error {
	res, err := s.write.ExecContext(ctx, `UPDATE targets SET prev_cert_fingerprint = '' WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("confirm certificate of target %q: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("target %q: %w", id, store.ErrNotFound)
	}
	return nil
}
