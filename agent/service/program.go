package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	ks "github.com/kardianos/service"
	"go.uber.org/zap"
)

// DefaultStopTimeout is how long Stop waits for the agent to cancel its
// tasks (restoring old containers) before giving up; systemd's
// TimeoutStopSec (45s) is the backstop after it.
const DefaultStopTimeout = 30 * time.Second

// Program runs the agent under a service manager: it is kardianos'
// service.Interface around the same run function `tentacle run` uses.
type Program struct {
	parent      context.Context
	run         func(context.Context) error
	log         *zap.Logger
	StopTimeout time.Duration
	// exit ends the process when the agent stops on its own; the service
	// manager then restarts it (systemd Restart=always, SCM recovery
	// actions, which only count a process that exits without reporting
	// "stopped").
	exit func(code int)

	mu       sync.Mutex
	cancel   context.CancelFunc
	done     chan struct{}
	err      error
	stopping bool
}

// NewProgram returns a Program calling run with a context that ends when
// the service manager stops the service or parent ends.
func NewProgram(parent context.Context, run func(context.Context) error, log *zap.Logger) *Program {
	return &Program{parent: parent, run: run, log: log, StopTimeout: DefaultStopTimeout, exit: os.Exit}
}

var _ ks.Interface = (*Program)(nil)

// Start starts the agent and returns at once, as kardianos requires.
func (p *Program) Start(ks.Service) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done != nil {
		return errors.New("service program already started")
	}
	ctx, cancel := context.WithCancel(p.parent)
	p.cancel, p.done = cancel, make(chan struct{})
	go func() {
		err := p.run(ctx)
		p.mu.Lock()
		p.err = err
		stopping := p.stopping
		p.mu.Unlock()
		close(p.done)
		if stopping {
			return
		}
		// Not asked to stop: the agent failed, or parent ended (a signal).
		code := 0
		if err != nil {
			code = 1
			p.log.Error("agent stopped", zap.Error(err))
		}
		_ = p.log.Sync()
		p.exit(code)
	}()
	return nil
}

// Stop cancels the agent and waits up to StopTimeout for it to return.
func (p *Program) Stop(ks.Service) error {
	p.mu.Lock()
	if p.done == nil {
		p.mu.Unlock()
		return nil
	}
	p.stopping = true
	done := p.done
	p.cancel()
	p.mu.Unlock()
	t := time.NewTimer(p.StopTimeout)
	defer t.Stop()
	select {
	case <-done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.err
	case <-t.C:
		return fmt.Errorf("agent did not stop within %s", p.StopTimeout)
	}
}
