package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/server/store"
)

// TestGroupCommitIsolatesFailures runs many writers at once, so that they
// share transactions, every third one failing after its write: the others'
// writes are all committed, the failed ones' none.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	errBoom := errors.New("boom")
	const n = 300
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = s.inTx(ctx, func(tx *sql.Tx) error {
				name := fmt.Sprintf("env-%03d", i)
				if _, err := tx.ExecContext(ctx, `INSERT INTO environments (name, description, created_at) VALUES (?, '', ?)`, name, stamp(time.Now())); err != nil {
					return err
				}
				if i%3 == 0 {
					return errBoom
				}
				return nil
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if want := i%3 == 0; (err != nil) != want || (want && !errors.Is(err, errBoom)) {
			t.Fatalf("writer %d: %v", i, err)
		}
		_, err := s.GetEnvironment(ctx, fmt.Sprintf("env-%03d", i))
		if i%3 == 0 && !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("env-%03d of a failed writer: %v, want not found", i, err)
		}
		if i%3 != 0 && err != nil {
			t.Fatalf("env-%03d: %v", i, err)
		}
	}
}

// TestGroupCommitSkipsCancelledCallers: a caller whose context is done
// gets its error and writes nothing.
func TestGroupCommitSkipsCancelledCallers(t *testing.T) {
	s, _ := openTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	if err := s.inTx(ctx, func(*sql.Tx) error { ran = true; return nil }); !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("cancelled caller: %v, ran %v", err, ran)
	}
}
