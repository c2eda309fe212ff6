// Package sqlite is the embedded store.Store backend: one SQLite file in the
// server's data directory, through modernc.org/sqlite (pure Go, no cgo).
//
// It keeps no business rules beyond those store.Store documents, and nothing
// outside the server may import it (the agent links no SQL driver).
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/tentacle-deploy/tentacle/server/store"
)

// busyTimeout bounds the wait for a lock held by another process (a second
// server or a `migrate` run); within this process writers queue in Go.
const busyTimeout = 5 * time.Second

// Store is a store.Store on one SQLite database file.
type Store struct {
	// write has a single connection: writers wait their turn in database/sql
	// instead of polling SQLite's busy handler, and BEGIN IMMEDIATE keeps
	// other processes from upgrading a read lock under us.
	write *sql.DB
	// read has several query_only connections; in WAL mode they read a
	// consistent snapshot while the writer commits.
	read *cachedDB

	// Group commit of inTx (see there).
	txMu      sync.Mutex
	txQueue   []*txRequest
	txLeading bool

	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// Open opens (creating it with mode 0600 if needed) the database at path and
// brings its schema up to date. It refuses a database whose schema is newer
// than this binary knows, with an error wrapping ErrSchemaTooNew.
func Open(ctx context.Context, path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// SQLite would create the file with 0644; the store holds token hashes
	// and logs, so create it ourselves. SQLite gives -wal and -shm the
	// database file's mode.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		err = f.Close()
	} else if errors.Is(err, fs.ErrExist) {
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}

	write, err := sql.Open("sqlite", dsn(abs, url.Values{
		"_txlock": {"immediate"},
		"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()),
			"foreign_keys(1)",
			// FULL: an acknowledged log offset or event must survive a
			// power cut, since the agent drops its spool on the ack.
			"synchronous(FULL)",
		},
	}))
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	if err := enableWAL(ctx, write); err != nil {
		write.Close()
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	if err := migrate(ctx, write); err != nil {
		write.Close()
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}

	read, err := sql.Open("sqlite", dsn(abs, url.Values{
		"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()),
			"query_only(1)",
		},
	}))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	readers := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(readers)
	read.SetMaxIdleConns(readers)
	if err := read.PingContext(ctx); err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	return &Store{write: write, read: newCachedDB(read)}, nil
}

// enableWAL switches the file to WAL mode (persistent, so later connections
// find it set). The switch needs an exclusive lock and SQLite reports a
// competing switch as SQLITE_BUSY at once, without its busy handler, so
// another process opening a new file at the same moment is waited for here.
func enableWAL(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(busyTimeout)
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		var mode string
		err := db.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode)
		if err == nil {
			if !strings.EqualFold(mode, "wal") {
				return fmt.Errorf("journal mode is %s: this file system does not support WAL", mode)
			}
			return nil
		}
		var se *sqlite.Error
		if !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return fmt.Errorf("enable WAL: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// dsn builds a file: URI; the path is escaped so '?', '#' and '%' in a
// directory name cannot be read as URI syntax.
func dsn(abs string, params url.Values) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // Windows: file:/C:/data/tentacle.db
	}
	u := url.URL{Scheme: "file", Path: p, OmitHost: true, RawQuery: params.Encode()}
	return u.String()
}

// Close closes the database; calling it again returns the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = errors.Join(s.read.Close(), s.write.Close())
	})
	return s.closeErr
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE) and returns once
// fn's writes are committed (durably: synchronous FULL), or fn's error.
//
// Concurrent callers share commits (group commit): while one transaction
// commits, the calls that arrive wait, and the next transaction runs them
// all, each fn in its own savepoint, so that an fn that fails rolls back
// its own writes only. One fsync then covers many writers: what lets the
// server store the events and assignments of thousands of agents at once.
// A transaction that fails as a whole (the commit, or a savepoint statement
// after SQLite rolled back on its own) is retried call by call, each alone.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req := &txRequest{ctx: ctx, fn: fn, done: make(chan error, 1)}
	s.txMu.Lock()
	s.txQueue = append(s.txQueue, req)
	lead := !s.txLeading
	s.txLeading = true
	s.txMu.Unlock()
	if lead {
		s.commitQueued(req)
	}
	return <-req.done
}

// maxTxBatch bounds the calls that share one transaction, so that none
// waits behind an unbounded batch.
const maxTxBatch = 256

// txRequest is one inTx call waiting for its commit.
type txRequest struct {
	ctx  context.Context
	fn   func(tx *sql.Tx) error
	done chan error
}

// commitQueued runs the queued calls, a batch per transaction; one caller
// at a time leads. The leader's own call returns once its batch is
// committed: if calls are still queued then, a goroutine leads on.
func (s *Store) commitQueued(own *txRequest) {
	for {
		s.txMu.Lock()
		n := min(len(s.txQueue), maxTxBatch)
		if n == 0 {
			s.txLeading = false
			s.txMu.Unlock()
			return
		}
		if own == nil || !slices.Contains(s.txQueue, own) {
			if own != nil {
				s.txMu.Unlock()
				go s.commitQueued(nil)
				return
			}
		}
		batch := slices.Clone(s.txQueue[:n])
		s.txQueue = slices.Delete(s.txQueue, 0, n)
		s.txMu.Unlock()
		s.commitBatch(batch)
	}
}

func (s *Store) commitBatch(batch []*txRequest) {
	var live []*txRequest
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- err
			continue
		}
		live = append(live, r)
	}
	if len(live) == 1 {
		live[0].done <- s.runTx(live[0].ctx, live[0].fn)
		return
	}
	if len(live) == 0 {
		return
	}
	errs, err := s.runShared(live)
	if err != nil {
		// Nothing of the batch is committed: each call again, alone.
		for _, r := range live {
			r.done <- s.runTx(r.ctx, r.fn)
		}
		return
	}
	for i, r := range live {
		r.done <- errs[i]
	}
}

// runTx is one call's own transaction.
func (s *Store) runTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// runShared runs every call of batch in one transaction, each in a
// savepoint, and commits. It returns each call's own error, or an error of
// the transaction as a whole when nothing was committed.
func (s *Store) runShared(batch []*txRequest) ([]error, error) {
	// The transaction outlives any one caller's context: a caller that
	// gives up must not roll back the others' writes.
	ctx := context.WithoutCancel(batch[0].ctx)
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	errs := make([]error, len(batch))
	for i, r := range batch {
		if _, err := tx.ExecContext(ctx, `SAVEPOINT call`); err != nil {
			tx.Rollback()
			return nil, err
		}
		if errs[i] = r.fn(tx); errs[i] != nil {
			if _, err := tx.ExecContext(ctx, `ROLLBACK TO call`); err != nil {
				tx.Rollback()
				return nil, err
			}
		}
		if _, err := tx.ExecContext(ctx, `RELEASE call`); err != nil {
			tx.Rollback()
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return errs, nil
}

// querier is what *sql.DB and *sql.Tx share, so reads can run in either.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// isUnique reports a UNIQUE or PRIMARY KEY violation, by extended result code.
func isUnique(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// exists reports whether query (a SELECT of one row) finds anything.
func exists(ctx context.Context, q querier, query string, args ...any) (bool, error) {
	var one int
	err := q.QueryRowContext(ctx, query, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// listRows runs query and scans each row with scan.
func listRows[T any](ctx context.Context, q querier, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// dbTime is a time column: microseconds since the epoch, NULL for the zero time.
func dbTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// stamp is dbTime for a NOT NULL creation time: zero means now.
func stamp(t time.Time) int64 {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UnixMicro()
}

// timeCol scans a time column into *t, in UTC.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	default:
		return fmt.Errorf("time column holds %T, want integer", src)
	}
	return nil
}

// jsonCol scans a JSON text column into v.
type jsonCol struct{ v any }

func (c jsonCol) Scan(src any) error {
	switch b := src.(type) {
	case string:
		return json.Unmarshal([]byte(b), c.v)
	case []byte:
		return json.Unmarshal(b, c.v)
	default:
		return fmt.Errorf("JSON column holds %T, want text", src)
	}
}

func toJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// rolesJSON stores nil roles as [] so the column always holds an array.
func rolesJSON(roles []string) (string, error) {
	if roles == nil {
		roles = []string{}
	}
	return toJSON(roles)
}

// rolesCol scans a roles column; an empty array reads back as nil.
type rolesCol struct{ r *[]string }

func (c rolesCol) Scan(src any) error {
	if err := (jsonCol{c.r}).Scan(src); err != nil {
		return err
	}
	if len(*c.r) == 0 {
		*c.r = nil
	}
	return nil
}
