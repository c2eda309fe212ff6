package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// maxCachedStmts bounds the statements a cachedDB keeps prepared; queries
// beyond it (none today: the store's queries are a fixed set, a few built
// from filters) run unprepared as before.
const maxCachedStmts = 512

// cachedDB is a *sql.DB whose queries are prepared once per connection and
// reused: the server runs the same few reads (a task, a deployment, a
// release, a target) thousands of times a second under a fleet, and
// parsing the SQL anew each time was a third of its CPU in a fan-out to
// 5,000 agents (docs/_bench_fleet.md). Safe for concurrent use.
type cachedDB struct {
	*sql.DB
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

func newCachedDB(db *sql.DB) *cachedDB { return &cachedDB{DB: db, stmts: map[string]*sql.Stmt{}} }

// stmt returns the prepared statement of query, or nil when it cannot be
// cached (the cache is full, or preparing failed: the plain call then
// reports the error).
func (c *cachedDB) stmt(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.stmts[query]; ok {
		return st
	}
	if len(c.stmts) >= maxCachedStmts {
		return nil
	}
	// Prepared outside any caller's context: the statement outlives the
	// call that first needed it.
	st, err := c.DB.PrepareContext(context.Background(), query)
	if err != nil {
		return nil
	}
	c.stmts[query] = st
	return st
}

func (c *cachedDB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := c.stmt(query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return c.DB.QueryContext(ctx, query, args...)
}

func (c *cachedDB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := c.stmt(query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return c.DB.QueryRowContext(ctx, query, args...)
}

func (c *cachedDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := c.stmt(query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return c.DB.ExecContext(ctx, query, args...)
}

// Close closes the statements, then the database.
func (c *cachedDB) Close() error {
	c.mu.Lock()
	for q, st := range c.stmts {
		st.Close()
		delete(c.stmts, q)
	}
	c.mu.Unlock()
	return c.DB.Close()
}
