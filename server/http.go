package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"go.uber.org/zap"

	"github.com/tentacle-deploy/tentacle/internal/probehttp"
)

// readyTimeout bounds the store query behind /readyz: a store slower than
// this is not ready to serve agents either.
const readyTimeout = time.Second

// probeServer is the plain-HTTP listener of /metrics, /healthz and
// /readyz. It carries no secrets and takes no input, so it has no TLS and
// no authentication; it listens on loopback unless told otherwise.
type probeServer struct {
	lis  net.Listener
	http *http.Server
}

// listenProbes binds cfg.HTTPListen; an empty address serves nothing.
func (s *Server) listenProbes() error {
	if s.cfg.HTTPListen == "" {
		return nil
	}
	lis, err := net.Listen("tcp", s.cfg.HTTPListen)
	if err != nil {
		return fmt.Errorf("--http-listen %s: %w (use another HOST:PORT, or \"\" to serve no metrics and probes)", s.cfg.HTTPListen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", probehttp.MetricsHandler(s.metrics.reg, s.log))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", s.serveReady)
	if s.cfg.DebugPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	s.probes = &probeServer{lis: lis, http: probehttp.NewServer(mux, s.log)}
	return nil
}

// ProbeAddr is the address of /metrics, /healthz and /readyz; empty when
// they are not served.
func (s *Server) ProbeAddr() string {
	if s.probes == nil {
		return ""
	}
	return s.probes.lis.Addr().String()
}

// serveProbes serves until closeProbes.
func (s *Server) serveProbes() {
	if s.probes == nil {
		return
	}
	s.log.Info("serving metrics and probes over plain HTTP", zap.String("addr", s.ProbeAddr()))
	go func() {
		if err := s.probes.http.Serve(s.probes.lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics and probes listener", zap.Error(err))
		}
	}()
}

// closeProbes stops the listener; it runs last in a shutdown, so /readyz
// answers 503 while the server drains.
func (s *Server) closeProbes() {
	if s.probes == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.probes.http.Shutdown(ctx); err != nil {
		s.probes.http.Close()
	}
}

// serveReady answers 200 when the server can serve agents: not shutting
// down, gRPC serving and the store answering; else 503 with the reason.
func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	if reason := s.notReady(r.Context()); reason != "" {
		http.Error(w, reason, http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

func (s *Server) notReady(ctx context.Context) string {
	select {
	case <-s.stopping:
		return "shutting down"
	default:
	}
	if !s.grpcServing.Load() {
		return "gRPC listener not serving"
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if _, err := s.store.CountAdminTokens(ctx); err != nil {
		return fmt.Sprintf("store: %v", err)
	}
	return ""
}
