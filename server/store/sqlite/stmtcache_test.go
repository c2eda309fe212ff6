package sqlite

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/server/store"
)

// TestStatementCache reads concurrently through the cache: the answers are
// right, each query is prepared once, and a full cache still answers.
func TestStatementCache(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	for i := range 3 {
		if err := s.CreateEnvironment(ctx, store.Environment{Name: fmt.Sprintf("env-%d", i), CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			name := fmt.Sprintf("env-%d", i%3)
			if e, err := s.GetEnvironment(ctx, name); err != nil || e.Name != name {
				t.Errorf("GetEnvironment(%s) = %+v, %v", name, e, err)
			}
		})
	}
	wg.Wait()
	s.read.mu.Lock()
	n := len(s.read.stmts)
	s.read.mu.Unlock()
	if n == 0 || n > 2 {
		t.Fatalf("%d statements cached after one kind of read, want 1 or 2", n)
	}
	// Full: reads still answer, unprepared.
	s.read.mu.Lock()
	for i := len(s.read.stmts); i < maxCachedStmts; i++ {
		s.read.stmts[fmt.Sprint("filler ", i)] = nil
	}
	s.read.mu.Unlock()
	if _, err := s.ListEnvironments(ctx); err != nil {
		t.Fatal(err)
	}
	s.read.mu.Lock()
	for q := range s.read.stmts {
		if s.read.stmts[q] == nil {
			delete(s.read.stmts, q)
		}
	}
	s.read.mu.Unlock()
}
