package sqlite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/tentacle-deploy/tentacle/server/store"
	"github.com/tentacle-deploy/tentacle/server/store/storetest"
)

func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tentacle.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, _ := openTemp(t)
		return s
	})
}

func TestReopenKeepsDataAndSkipsMigrations(t *testing.T) {
	ctx := t.Context()
	s, path := openTemp(t)
	if err := s.CreateEnvironment(ctx, store.Environment{Name: "prod"}); err != nil {
		t.Fatal(err)
	}
	applied := migrationRows(t, s)
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != len(ms) {
		t.Fatalf("%d migrations recorded, %d embedded", len(applied), len(ms))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	if _, err := s2.GetEnvironment(ctx, "prod"); err != nil {
		t.Errorf("after reopen: %v", err)
	}
	if again := migrationRows(t, s2); strings.Join(again, ";") != strings.Join(applied, ";") {
		t.Errorf("migrations after reopen %v, want the first run's %v", again, applied)
	}
}

// migrationRows lists "version name applied_at" of schema_migrations.
func migrationRows(t *testing.T, s *Store) []string {
	t.Helper()
	rows, err := s.read.QueryContext(t.Context(),
		`SELECT version || ' ' || name || ' ' || applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestConcurrentOpen migrates one new file from two Opens at once, as two
// server processes starting together would.
func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tentacle.db")
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			s, err := Open(t.Context(), path)
			if err == nil {
				err = s.Close()
			}
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	ctx := t.Context()
	s, path := openTemp(t)
	if _, err := s.write.ExecContext(ctx,
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '0999_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := Open(ctx, path)
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
	ms, _ := migrations()
	for _, want := range []string{"schema version 999", "knows up to " + strconv.Itoa(len(ms)), "newer tentacle-server"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestFileMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no Unix file modes")
	}
	s, path := openTemp(t)
	// A write makes sure the -wal and -shm files exist.
	if err := s.CreateEnvironment(t.Context(), store.Environment{Name: "prod"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s: mode %o, want 600", filepath.Base(p), mode)
		}
	}
}

func TestPragmas(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	for _, c := range []struct{ pragma, want string }{
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"synchronous", "2"}, // FULL
		{"busy_timeout", "5000"},
	} {
		var got string
		if err := s.write.QueryRowContext(ctx, "PRAGMA "+c.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("PRAGMA %s = %s, want %s", c.pragma, got, c.want)
		}
	}
	if _, err := s.read.ExecContext(ctx, `INSERT INTO environments (name, created_at) VALUES ('x', 0)`); err == nil {
		t.Error("the read pool accepted a write")
	}
}

// TestPathWithURICharacters opens a path that would be misread if it were
// pasted into the file: URI unescaped.
func TestPathWithURICharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir?x=1#frag%41")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "tentacle.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateEnvironment(t.Context(), store.Environment{Name: "prod"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Errorf("the database is not where asked: %v", err)
	}
}

func TestOpenMissingDirectory(t *testing.T) {
	_, err := Open(t.Context(), filepath.Join(t.TempDir(), "nope", "tentacle.db"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open in a missing directory: %v, want a not-exist error", err)
	}
}

// TestConstraintIsNotConflict checks that only UNIQUE and PRIMARY KEY
// violations read as ErrConflict.
func TestConstraintIsNotConflict(t *testing.T) {
	s, _ := openTemp(t)
	err := s.CreateEnvironment(t.Context(), store.Environment{Name: ""}) // CHECK (name <> '')
	if err == nil || errors.Is(err, store.ErrConflict) {
		t.Errorf("empty environment name: %v, want a plain error", err)
	}
}

func TestMigrationsNumbered(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatal("no migrations embedded")
	}
	for i, m := range ms {
		if m.version != i+1 || strings.TrimSpace(m.sql) == "" {
			t.Errorf("migration %d: %s version %d, %d bytes", i, m.name, m.version, len(m.sql))
		}
	}
}
