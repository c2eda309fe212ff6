package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tentacle-deploy/tentacle/agent/docker"
	"github.com/tentacle-deploy/tentacle/agent/journal"
	"github.com/tentacle-deploy/tentacle/internal/pki"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// Runner executes one task against the container engine; agent/docker's
// Deployer is the real one (see docker.Engine for the contract). Deploy is
// called at most once per task id and concurrently only for different
// applications; Reconcile only for a task an earlier agent process left
// unfinished, before any Deploy of it.
type Runner interface {
	Deploy(ctx context.Context, t docker.Task, progress func(docker.Progress), logs io.Writer) (docker.Result, error)
	Reconcile(ctx context.Context, t docker.Task, progress func(docker.Progress), logs io.Writer) (docker.Result, error)
	EngineVersion(ctx context.Context) (string, error)
}

// Agent is a running agent.
type Agent struct {
	id      Identity
	dataDir string
	server  string
	// cert is the client certificate new connections present and roots
	// the CAs they trust; renewal swaps both.
	cert     atomic.Pointer[tls.Certificate]
	roots    atomic.Pointer[x509.CertPool]
	renewNow chan struct{}
	// instance is random per process: the server tells a reconnect of this
	// agent from a clone presenting the same certificate.
	instance string
	log      *zap.Logger
	runner   Runner
	journal  *journal.Journal
	conn     *grpc.ClientConn
	client   tentaclev1.AgentServiceClient

	// accepting is false once the agent is stopping: assignments are then
	// left unacknowledged for the next start.
	accepting atomic.Bool
	stopGrace time.Duration
	// live is true while a session is established (Welcome received).
	live atomic.Bool
	// healthSeq numbers the health reports of this process, across
	// sessions.
	healthSeq atomic.Uint64
	// tails counts the live log tails streaming now (see maxTails).
	tails atomic.Int32

	mu       sync.Mutex
	appLocks map[string]*sync.Mutex
	cancels  map[string]context.CancelFunc
	tasks    sync.WaitGroup
}

// New builds an agent from its config and enrolled identity.
func New(cfg Config, runner Runner, log *zap.Logger) (*Agent, error) {
	id, err := LoadIdentity(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	server := id.Server
	if cfg.Server != "" {
		server = cfg.Server
	}
	j, err := journal.Open(filepath.Join(cfg.DataDir, "journal"))
	if err != nil {
		return nil, err
	}
	j.SetLogCap(cfg.SpoolCap())
	a := &Agent{
		id: id, dataDir: cfg.DataDir, server: server, instance: uuid.NewString(), runner: runner, journal: j,
		log:      log.With(zap.String("target", id.TargetName)),
		appLocks: map[string]*sync.Mutex{}, cancels: map[string]context.CancelFunc{}, stopGrace: StopGrace,
	}
	cert, err := tls.X509KeyPair(id.CertPEM, id.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("agent certificate and key in %s do not match: %w", cfg.DataDir, err)
	}
	a.cert.Store(&cert)
	roots, err := pki.CAPoolFromPEM(id.CAPEM)
	if err != nil {
		return nil, fmt.Errorf("%s in %s: %w", caFile, cfg.DataDir, err)
	}
	a.roots.Store(roots)
	a.renewNow = make(chan struct{}, 1)
	if a.conn, err = dial(server, &a.cert, &a.roots); err != nil {
		return nil, err
	}
	a.client = tentaclev1.NewAgentServiceClient(a.conn)
	return a, nil
}

// StopGrace is how long a stopping agent lets running tasks finish before
// it cancels them (the old container is then restored), and how long it then
// waits for their events and logs to reach the server. Service managers
// should allow a little more than twice this before killing the agent.
const StopGrace = 15 * time.Second

// Run keeps a session to the server until ctx ends, reconnecting with
// exponential backoff and full jitter. When ctx ends the agent stops taking
// work (new assignments are not acknowledged, so the server keeps them for
// the next start), lets running tasks finish within StopGrace — cancelling
// them after it — and reports their outcome before it returns.
func (a *Agent) Run(ctx context.Context) error {
	defer a.conn.Close()
	// The session outlives ctx: it must carry the final reports.
	linkCtx, stopLink := context.WithCancel(context.WithoutCancel(ctx))
	taskCtx, cancelTasks := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelTasks()
	// Before the first session, so that a redelivered unfinished task is
	// recognised as held and not started a second time.
	a.reconcile(taskCtx)
	a.accepting.Store(true)

	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); a.pruneLoop(linkCtx) }()
	go func() { defer wg.Done(); a.pushLogsLoop(linkCtx) }()
	go func() { defer wg.Done(); a.renewLoop(linkCtx) }()
	go func() { defer wg.Done(); a.sessionLoop(linkCtx, taskCtx) }()
	a.log.Info("agent starting", zap.String("server", a.server), zap.String("target_id", a.id.TargetID))

	<-ctx.Done()
	a.accepting.Store(false)
	a.log.Info("agent stopping: no new tasks; waiting for running ones", zap.Duration("grace", a.stopGrace))
	if !waitTimeout(&a.tasks, a.stopGrace) {
		a.log.Warn("running tasks did not finish in time: cancelling them (their previous containers are restored)")
		cancelTasks()
		a.tasks.Wait()
	}
	a.flush(a.stopGrace)
	stopLink()
	wg.Wait()
	a.log.Info("agent stopped")
	return nil
}

// Connected reports whether the agent has an established session: the
// server sent Welcome and the stream has not broken since.
func (a *Agent) Connected() bool { return a.live.Load() }

// SetStopGrace changes the stop grace period (StopGrace by default); call
// it before Run.
func (a *Agent) SetStopGrace(d time.Duration) { a.stopGrace = d }

// JournalRetention is how long a finished, fully reported task stays in the
// journal (for inspection on the host) before it is pruned.
const JournalRetention = 7 * 24 * time.Hour

// pruneLoop keeps the journal from growing forever: at start, then hourly.
func (a *Agent) pruneLoop(ctx context.Context) {
	for {
		if n, err := a.journal.Prune(time.Now().Add(-JournalRetention)); err != nil {
			a.log.Warn("journal prune", zap.Error(err))
		} else if n > 0 {
			a.log.Info("pruned finished tasks from the journal", zap.Int("tasks", n))
		}
		if !sleep(ctx, time.Hour) {
			return
		}
	}
}

// sessionLoop keeps a session up until ctx ends.
func (a *Agent) sessionLoop(ctx, taskCtx context.Context) {
	for attempt := 0; ; attempt++ {
		start := time.Now()
		err := a.session(ctx, taskCtx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > 30*time.Second {
			attempt = 0 // the link was healthy; start backing off afresh
		}
		wait := retryDelay(err, attempt)
		var rc *reconnectRequest
		switch {
		case errors.As(err, &rc):
			attempt = -1 // the server asked: not a failure to back off from
			a.log.Info("the server asked the agent to reconnect", zap.String("reason", rc.reason), zap.Duration("in", wait))
		case refused(err):
			a.log.Error("the server refuses this agent; retrying slowly (a revoked target must enroll again with a new token)",
				zap.Error(err), zap.Duration("in", wait))
		default:
			a.log.Warn("session ended, reconnecting", zap.Error(err), zap.Duration("in", wait))
		}
		if !sleep(ctx, wait) {
			return
		}
	}
}

// refusedRetry is the least wait after the server refused the agent itself
// (revoked, unknown or expired certificate): retrying fast cannot help and
// each refusal is an audit record on the server.
const refusedRetry = time.Minute

func refused(err error) bool {
	c := status.Code(err)
	return c == codes.PermissionDenied || c == codes.Unauthenticated
}

// retryDelay is how long to wait before the next Connect: what the server
// asked for (Reconnect, or a handshake refused with a retry hint), else
// exponential backoff.
func retryDelay(err error, attempt int) time.Duration {
	var rc *reconnectRequest
	var hint *retryHint
	switch {
	case errors.As(err, &rc):
		// Spread over the whole window, so that a server shedding all its
		// agents at once does not get them back at once.
		return jitter(min(rc.after, maxRetryHint))
	case errors.As(err, &hint):
		// The hint is the least wait; the jitter (up to a quarter more)
		// keeps the agents it refused in one burst from returning in one.
		return hint.after + jitter(hint.after/4)
	}
	d := backoff(attempt)
	if refused(err) {
		return max(d, refusedRetry)
	}
	return d
}

// jitter is a random duration in [0, d].
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

// reconnectRequest ends a session whose server sent Reconnect.
type reconnectRequest struct {
	after  time.Duration
	reason string
}

func (r *reconnectRequest) Error() string {
	return fmt.Sprintf("server asked to reconnect within %s: %s", r.after, r.reason)
}

// retryAfterKey is the trailer with which a server that refuses a
// handshake (codes.ResourceExhausted) says how many milliseconds to wait.
const retryAfterKey = "tentacle-retry-after-ms"

// maxRetryHint bounds a server's retry hint: a misconfigured server must
// not park its agents for hours.
const maxRetryHint = 10 * time.Minute

// retryHint is a refused handshake with the server's wait.
type retryHint struct {
	after time.Duration
	err   error
}

func (h *retryHint) Error() string {
	return fmt.Sprintf("%v (server asks to retry in %s)", h.err, h.after)
}
func (h *retryHint) Unwrap() error { return h.err }

// withRetryHint attaches the server's retry hint to err when the stream
// ended with codes.ResourceExhausted and the hint's trailer.
func withRetryHint(stream grpc.ClientStream, err error) error {
	if status.Code(err) != codes.ResourceExhausted {
		return err
	}
	for _, v := range stream.Trailer().Get(retryAfterKey) {
		ms, perr := strconv.ParseInt(v, 10, 64)
		if perr != nil || ms < 0 {
			continue
		}
		return &retryHint{after: min(time.Duration(ms)*time.Millisecond, maxRetryHint), err: err}
	}
	return err
}

// flush waits until the server has acknowledged every journaled event and
// log byte, or d has passed; what is left is sent after the next start.
func (a *Agent) flush(d time.Duration) {
	deadline := time.After(d)
	for {
		wake := a.journal.Wait()
		if len(a.journal.Unacked()) == 0 && len(a.journal.LogsToPush()) == 0 {
			return
		}
		select {
		case <-deadline:
			a.log.Warn("stopping with reports the server has not acknowledged; they are sent after the next start")
			return
		case <-wake:
		case <-time.After(100 * time.Millisecond): // acks do not wake the journal
		}
	}
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// backoff is exponential with full jitter, so thousands of agents
// reconnecting after a server restart spread out.
func backoff(attempt int) time.Duration {
	const base, max = 500 * time.Millisecond, 30 * time.Second
	d := max
	if attempt < 16 {
		d = min(max, base<<attempt)
	}
	return time.Duration(rand.Int64N(int64(d))) + 100*time.Millisecond
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func hostname() string { h, _ := os.Hostname(); return h }

var errNoWelcome = errors.New("server did not send Welcome")

func wrap(what string, err error) error { return fmt.Errorf("%s: %w", what, err) }
