// Package fleet runs many simulated agents in one process against a
// server, for load tests and benchmarks (reconnect storms, dispatch at
// scale). Each agent enrolls with a join token, with its own key and
// certificate, and runs the real agent session (package agent) over mutual
// TLS; only the Docker engine is simulated (Engine). An agent costs a few
// goroutines, its journal in memory and one connection: one file
// descriptor, two when the server runs in the same process, so thousands
// of agents need a raised open-files limit (Go raises the soft limit to
// the hard one on Linux; `ulimit -Hn` is what counts).
//
// It must not import server packages: a fleet reaches a server the way real
// agents do, through its address.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tentacle-deploy/tentacle/agent"
)

// Config describes a fleet.
type Config struct {
	// Server is the server's HOST:PORT.
	Server string
	// JoinToken enrolls every agent: it must allow Agents enrollments
	// (CreateJoinToken's uses).
	JoinToken string
	// Agents is how many agents to run.
	Agents int
	// Dir holds one data dir per agent (key, certificates, journal); an
	// enrollment already there is replaced.
	Dir string
	// Log receives the agents' logs, each with its target's name; nil
	// logs nothing.
	Log *zap.Logger
	// EnrollParallel bounds the enrollments in flight (default 16).
	EnrollParallel int
	// StopGrace is each agent's stop grace (default one second: the
	// simulated engine finishes tasks at once).
	StopGrace time.Duration
	// Engine is the simulated engine the agents share; nil: a new one.
	// Two fleets given the same engine count runs together.
	Engine *Engine
}

// Fleet is a set of running simulated agents.
type Fleet struct {
	engine  *Engine
	members []*member
}

type member struct {
	agent *agent.Agent
	stop  func()
	done  chan struct{}
}

// Start enrolls cfg.Agents agents and starts each as soon as it is
// enrolled. ctx bounds the enrollments only: the agents run until Stop.
// Enrollment is retried a few times (a busy server may refuse it); if an
// agent cannot enroll, the agents already started are stopped and the
// error is returned.
func Start(ctx context.Context, cfg Config) (*Fleet, error) {
	if cfg.Agents <= 0 {
		return nil, fmt.Errorf("fleet: %d agents: want at least one", cfg.Agents)
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.EnrollParallel <= 0 {
		cfg.EnrollParallel = 16
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = time.Second
	}
	if cfg.Engine == nil {
		cfg.Engine = NewEngine()
	}
	f := &Fleet{engine: cfg.Engine, members: make([]*member, cfg.Agents)}
	sem := make(chan struct{}, cfg.EnrollParallel)
	errs := make([]error, cfg.Agents)
	var wg sync.WaitGroup
	for i := range cfg.Agents {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			f.members[i], errs[i] = startMember(ctx, cfg, f.engine, filepath.Join(cfg.Dir, fmt.Sprintf("agent-%05d", i)))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		f.Stop()
		return nil, err
	}
	return f, nil
}

// enrollAttempts bounds the enrollment retries of one agent.
const enrollAttempts = 8

func startMember(ctx context.Context, cfg Config, e *Engine, dir string) (*member, error) {
	var err error
	for attempt := range enrollAttempts {
		if _, err = agent.Enroll(ctx, agent.EnrollOptions{Server: cfg.Server, Token: cfg.JoinToken, DataDir: dir, Force: true}); err == nil {
			break
		}
		if attempt == enrollAttempts-1 {
			return nil, fmt.Errorf("enroll %s: %w", dir, err)
		}
		select { // full jitter, as the agent's reconnects
		case <-ctx.Done():
			return nil, fmt.Errorf("enroll %s: %w", dir, errors.Join(err, ctx.Err()))
		case <-time.After(time.Duration(rand.Int64N(int64(100 * time.Millisecond << attempt)))):
		}
	}
	a, err := agent.New(agent.Config{DataDir: dir}, e, cfg.Log)
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", dir, err)
	}
	a.SetStopGrace(cfg.StopGrace)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m := &member{agent: a, done: make(chan struct{})}
	go func() { defer close(m.done); a.Run(runCtx) }()
	m.stop = func() { cancel(); <-m.done }
	return m, nil
}

// Engine is the simulated Docker engine the fleet's agents share.
func (f *Fleet) Engine() *Engine { return f.engine }

// Size is the number of agents.
func (f *Fleet) Size() int { return len(f.members) }

// Live counts the agents with an established session.
func (f *Fleet) Live() int {
	n := 0
	for _, m := range f.members {
		if m != nil && m.agent.Connected() {
			n++
		}
	}
	return n
}

// Running counts the agents whose Run has not returned: an agent never
// gives up on its own, so this stays Size until Stop.
func (f *Fleet) Running() int {
	n := 0
	for _, m := range f.members {
		if m == nil {
			continue
		}
		select {
		case <-m.done:
		default:
			n++
		}
	}
	return n
}

// Stop stops every agent (in parallel: each may wait its stop grace) and
// returns when all have stopped. It may be called more than once.
func (f *Fleet) Stop() {
	var wg sync.WaitGroup
	for _, m := range f.members {
		if m != nil {
			wg.Go(m.stop)
		}
	}
	wg.Wait()
}
