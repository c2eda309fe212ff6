package server

import "sync"

// changes wakes watchers (WatchDeployment, ReadTaskLog -f) when anything
// they might show was stored. Watchers re-read the store; a wake-up says
// only "look again", so a missed or extra one is harmless.
type changes struct {
	mu sync.Mutex
	ch chan struct{}
}

func newChanges() *changes { return &changes{ch: make(chan struct{})} }

// Wait returns a channel closed at the next change.
func (c *changes) Wait() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ch
}

// Changed wakes every current waiter.
func (c *changes) Changed() {
	c.mu.Lock()
	close(c.ch)
	c.ch = make(chan struct{})
	c.mu.Unlock()
}
