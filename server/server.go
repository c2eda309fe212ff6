// Package server is the Tentacle control server: the agent gateway (gRPC
// with mutual TLS), the dispatcher that hands tasks to connected agents and
// the admin API. It owns the CA in its data directory.
//
// It must not import agent packages: what server and agent share lives in
// proto/ and internal/.
package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/tentacle-deploy/tentacle/internal/pki"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
	"github.com/tentacle-deploy/tentacle/server/store"
	"github.com/tentacle-deploy/tentacle/server/store/sqlite"
)

// Config is what `tentacle-server serve` is built from.
type Config struct {
	// DataDir holds the store, the CA and the server certificate.
	DataDir string
	// Listen is the gRPC address for agents and admins, e.g. ":8443".
	Listen string
	// Hostnames are extra names and IPs agents and admins use to reach the
	// server; they go into the server certificate.
	Hostnames []string
	// HeartbeatInterval is how often agents send heartbeats (default 10s).
	HeartbeatInterval time.Duration
	// AgentTimeout is how long an agent may stay silent before its session
	// is closed and its target counts as unavailable (default 45s, at
	// least 3 heartbeat intervals).
	AgentTimeout time.Duration
	// MaxHandshakes bounds the sessions in their handshake at once; more
	// are refused with a retry hint (default 64).
	MaxHandshakes int
	// DeploymentDeadline is how long a deployment's tasks may wait for
	// their targets when the request sets no deadline (default 1h).
	DeploymentDeadline time.Duration
	// ClientCertValidity is the lifetime of enrolled agents' certificates.
	ClientCertValidity time.Duration
	// HTTPListen is the plain-HTTP address of /metrics, /healthz and
	// /readyz; empty serves none of them.
	HTTPListen string
	// DebugPprof serves net/http/pprof under /debug/pprof/ on HTTPListen
	// (profiling a server under load; off by default: it exposes
	// internals and costs CPU while a profile runs).
	DebugPprof bool
	// Health holds the thresholds past which a target counts as degraded.
	Health HealthThresholds
	// Out receives the bootstrap admin token, printed once on first start.
	Out io.Writer
}

// Server is a running control server.
type Server struct {
	cfg   Config
	log   *zap.Logger
	store store.Store
	ca    *pki.CA // the active CA: server certificate, join tokens' pin
	cas   pki.CASet
	// box seals and opens the values of sensitive variables.
	box *secretBox
	// maskers hides the sensitive values of tasks in what they report.
	maskers taskMaskers
	// serverCert is the certificate the server presents.
	serverCert *x509.Certificate
	caPool     *x509.CertPool
	sessions   *sessions
	handshakes *handshakes
	changes    *changes
	rollouts   *rollouts
	health     *healthBook
	grpc       *grpc.Server
	lis        net.Listener
	// grpcServing is true while grpc.Serve runs (for /readyz).
	grpcServing atomic.Bool
	metrics     *metrics
	// probes serves /metrics, /healthz and /readyz; nil without
	// --http-listen.
	probes *probeServer
	// stopping is closed when shutdown begins: long-lived streams (logs,
	// watches) end at once instead of holding up a restart.
	stopping chan struct{}
	stopOnce sync.Once
	// resendAfterNs is how long a session waits for the agent to
	// acknowledge a task before it sends it again (resendAfter).
	resendAfterNs atomic.Int64
	// BootstrapToken is set when this start created the first admin token.
	BootstrapToken string

	// tails are the live log tails waiting for their agent's stream.
	tails tails
}

// New opens the store, loads or creates the CA, server certificate and
// bootstrap admin token, and binds the listener. Serve starts serving.
func New(ctx context.Context, cfg Config, log *zap.Logger) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("--data-dir is required")
	}
	if cfg.Listen == "" {
		cfg.Listen = ":8443"
	}
	if err := cfg.applyDefaults(); err != nil {
		return nil, err
	}
	if cfg.ClientCertValidity <= 0 {
		cfg.ClientCertValidity = 30 * 24 * time.Hour
	}
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if err := pki.RestrictDir(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	cas, created, err := pki.LoadCASet(filepath.Join(cfg.DataDir, "pki"))
	if err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	ca := cas.Active
	if created {
		log.Info("created CA", zap.String("ca_hash", ca.Hash()))
	}
	if cas.Next != nil {
		log.Warn("CA rotation in progress: agents are asked to renew with the next CA; run `tentacle-server ca finish-rotation` once `tentaclectl targets` shows none on the old one",
			zap.String("next_ca_hash", cas.Next.Hash()))
	}
	box, created, err := loadOrCreateSecretBox(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("created the key sensitive variables are sealed with: back it up with the data directory", zap.String("file", filepath.Join(cfg.DataDir, variablesKeyFile)))
	}
	hosts := serverHosts(cfg.Hostnames)
	cert, err := pki.LoadOrCreateServerCert(filepath.Join(cfg.DataDir, "pki"), ca, hosts)
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, "tentacle.db"))
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s := &Server{cfg: cfg, log: log, store: st, ca: ca, cas: cas, box: box, sessions: newSessions(), handshakes: newHandshakes(cfg.MaxHandshakes), changes: newChanges(), health: newHealthBook(), stopping: make(chan struct{})}
	s.rollouts = newRollouts(s)
	s.metrics = newMetrics(s)
	s.resendAfterNs.Store(int64(defaultResendAfter))
	if err := s.bootstrap(ctx); err != nil {
		st.Close()
		return nil, err
	}
	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	s.lis = lis
	if err := s.listenProbes(); err != nil {
		lis.Close()
		st.Close()
		return nil, err
	}
	s.caPool = cas.Pool()
	s.serverCert = cert.Leaf
	s.grpc = grpc.NewServer(
		grpc.Creds(credentials.NewTLS(pki.ServerTLSConfig(cert))),
		// grpc's defaults notice a dead peer after hours; agents must be
		// noticed in seconds.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 15 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		// Per-connection buffers dominate an idle agent's cost (gRPC's
		// default is a 32 KiB read buffer per connection, held for the
		// connection's life, and a 32 KiB write buffer): a small read
		// buffer (TLS buffers its records anyway) and write buffers taken
		// from a pool only while a write is flushed keep thousands of idle
		// sessions cheap. docs/_bench_fleet.md has the before and after.
		grpc.ReadBufferSize(connReadBuffer),
		grpc.SharedWriteBuffer(true),
		// Metrics first, so that calls refused by auth are counted too.
		grpc.ChainUnaryInterceptor(s.metrics.grpc.UnaryServerInterceptor(), s.authUnary),
		grpc.ChainStreamInterceptor(s.metrics.grpc.StreamServerInterceptor(), s.authStream),
	)
	tentaclev1.RegisterAgentServiceServer(s.grpc, &gateway{s: s})
	tentaclev1.RegisterAdminServiceServer(s.grpc, &admin{s: s})
	s.metrics.grpc.InitializeMetrics(s.grpc)
	return s, nil
}

// connReadBuffer is the read buffer of each client connection.
const connReadBuffer = 4 << 10

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// CA returns the PEM CA bundle clients trust and the active CA's pin hash.
func (s *Server) CA() (pem []byte, hash string) { return s.cas.Bundle(), s.ca.Hash() }

// ServerCertificate is the certificate the server presents.
func (s *Server) ServerCertificate() *x509.Certificate { return s.serverCert }

// Store exposes the store to in-process callers (dev mode, tests).
func (s *Server) Store() store.Store { return s.store }

// Serve resumes the running deployments' rollouts, fails tasks past their
// deployment's deadline as time goes, and serves until ctx ends; then it
// stops within a few seconds (see shutdown) and closes the store.
func (s *Server) Serve(ctx context.Context) error {
	s.rollouts.resume(ctx)
	deadlines, stopDeadlines := context.WithCancel(context.WithoutCancel(ctx))
	deadlinesDone := make(chan struct{})
	go func() { s.failOverdueTasks(deadlines); close(deadlinesDone) }()
	errc := make(chan error, 1)
	s.grpcServing.Store(true)
	go func() {
		err := s.grpc.Serve(s.lis)
		s.grpcServing.Store(false)
		errc <- err
	}()
	s.log.Info("serving", zap.String("addr", s.Addr()), zap.String("ca_hash", s.ca.Hash()))
	s.serveProbes()
	var err error
	select {
	case <-ctx.Done():
		s.shutdown()
	case err = <-errc:
	}
	s.closeProbes()
	stopDeadlines()
	<-deadlinesDone
	s.rollouts.stop()
	if cerr := s.store.Close(); err == nil {
		err = cerr
	}
	return err
}

// How long a stopping server gives its agents to take their Reconnect and
// leave, then every stream to end, before it cuts what is left.
const (
	shutdownSessionsGrace = 2 * time.Second
	shutdownStreamsGrace  = 3 * time.Second
)

// shutdown stops the server within shutdownSessionsGrace +
// shutdownStreamsGrace: new sessions are refused with a retry hint, every
// live session is asked to reconnect later, log and watch streams end (they
// watch s.stopping), then gRPC stops. GracefulStop alone would wait for
// the agents' long-lived streams forever.
func (s *Server) shutdown() {
	s.refuseNewSessions()
	s.sessions.reconnectAll(shutdownReconnect)
	if n := s.sessions.waitEmpty(shutdownSessionsGrace); n > 0 {
		s.log.Warn("sessions still open after asking their agents to reconnect: closing them", zap.Int("sessions", n))
	}
	s.sessions.closeAll()
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(shutdownStreamsGrace):
		s.log.Warn("streams still open at the end of the shutdown grace: cutting them")
		s.grpc.Stop()
	}
}

// defaultResendAfter: an agent acknowledges a task as soon as it has
// journaled it, in milliseconds; 30 s without it means the Assign was lost.
const defaultResendAfter = 30 * time.Second

func (s *Server) resendAfter() time.Duration { return time.Duration(s.resendAfterNs.Load()) }

// refuseNewSessions begins the shutdown: from now on Connect answers
// Unavailable with a retry hint, and log and watch streams end.
func (s *Server) refuseNewSessions() { s.stopOnce.Do(func() { close(s.stopping) }) }

// bootstrap creates the first admin token when the store has none and
// prints it once: it is never stored in clear and cannot be shown again.
func (s *Server) bootstrap(ctx context.Context) error {
	n, err := s.store.CountAdminTokens(ctx)
	if err != nil {
		return fmt.Errorf("count admin tokens: %w", err)
	}
	if n > 0 {
		return nil
	}
	tok, err := s.CreateAdminToken(ctx, "bootstrap", RoleAdmin, 0)
	if err != nil {
		return err
	}
	s.BootstrapToken = tok
	fmt.Fprintf(s.cfg.Out, "Bootstrap admin token (shown once, store it now):\n\n    %s\n\n", tok)
	return nil
}

// CreateAdminToken creates an admin API token and returns it; only its hash
// is stored.
func (s *Server) CreateAdminToken(ctx context.Context, name, role string, ttl time.Duration) (string, error) {
	tok, _, err := s.createAdminToken(ctx, name, role, ttl, "server")
	return tok, err
}

func (s *Server) createAdminToken(ctx context.Context, name, role string, ttl time.Duration, by string) (string, store.AdminToken, error) {
	tok, err := pki.NewAdminToken()
	if err != nil {
		return "", store.AdminToken{}, err
	}
	now := time.Now().UTC()
	t := store.AdminToken{ID: newID(), Name: name, Hash: pki.HashAdminToken(tok), Role: role, CreatedBy: by, CreatedAt: now}
	if ttl > 0 {
		t.ExpiresAt = now.Add(ttl)
	}
	if err := s.store.CreateAdminToken(ctx, t); err != nil {
		return "", store.AdminToken{}, fmt.Errorf("create admin token: %w", err)
	}
	return tok, t, nil
}

var dnsNameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

func serverHosts(extra []string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	// The machine's hostname is added when it is a plain DNS name; some
	// (containers, odd VMs) are not and would make the certificate invalid.
	if h, err := os.Hostname(); err == nil && dnsNameRE.MatchString(h) {
		hosts = append(hosts, h)
	}
	seen := map[string]bool{}
	var out []string
	for _, h := range append(hosts, extra...) {
		if h != "" && !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
}
