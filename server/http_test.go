package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"
)

// probe GETs path on the server's probe listener.
func probe(t *testing.T, s *Server, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + s.ProbeAddr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, strings.TrimSpace(string(body))
}

func wantProbe(t *testing.T, s *Server, path string, code int, body string) {
	t.Helper()
	if gotCode, gotBody := probe(t, s, path); gotCode != code || gotBody != body {
		t.Errorf("GET %s: %d %q, want %d %q", path, gotCode, gotBody, code, body)
	}
}

func startProbedServer(t *testing.T) *Server {
	t.Helper()
	s, _, _ := startServerWith(t, Config{HTTPListen: "127.0.0.1:0"}, zaptest.NewLogger(t))
	// Serve marks gRPC as serving just before it logs; wait for it rather
	// than race the first probe.
	until(t, "gRPC serving", func() bool { return s.grpcServing.Load() })
	return s
}

func TestProbesReadyUntilShutdownBegins(t *testing.T) {
	t.Parallel()
	s := startProbedServer(t)
	wantProbe(t, s, "/healthz", http.StatusOK, "ok")
	wantProbe(t, s, "/readyz", http.StatusOK, "ok")
	if code, body := probe(t, s, "/metrics"); code != http.StatusOK || !strings.Contains(body, "tentacle_server_sessions 0") {
		t.Errorf("GET /metrics: %d, want 200 with tentacle_server_sessions 0 in:\n%s", code, body)
	}

	s.refuseNewSessions() // what shutdown does first
	wantProbe(t, s, "/readyz", http.StatusServiceUnavailable, "shutting down")
	wantProbe(t, s, "/healthz", http.StatusOK, "ok")
}

func TestReadyzFailsWhenTheStoreDoesNotAnswer(t *testing.T) {
	t.Parallel()
	s := startProbedServer(t)
	if err := s.Store().Close(); err != nil {
		t.Fatal(err)
	}
	code, body := probe(t, s, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "store: ") {
		t.Errorf("GET /readyz with the store closed: %d %q, want 503 \"store: …\"", code, body)
	}
}

func TestProbesStopWithTheServer(t *testing.T) {
	t.Parallel()
	s, stop, done := startServerWith(t, Config{HTTPListen: "127.0.0.1:0"}, zaptest.NewLogger(t))
	addr := s.ProbeAddr()
	stop()
	<-done
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("the probe listener still answers after the server stopped")
	}
}

func TestNoProbesWithoutHTTPListen(t *testing.T) {
	t.Parallel()
	if s := startServer(t); s.ProbeAddr() != "" {
		t.Errorf("probes served on %s with --http-listen empty", s.ProbeAddr())
	}
}

func TestBadHTTPListenNamesTheFlag(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, addr := range []string{taken.Addr().String(), "127.0.0.1:notaport"} {
		t.Run(addr, func(t *testing.T) {
			cfg := Config{DataDir: filepath.Join(t.TempDir(), "data"), Listen: "127.0.0.1:0", HTTPListen: addr, Out: io.Discard}
			s, err := New(context.Background(), cfg, zaptest.NewLogger(t))
			if err == nil {
				s.lis.Close()
				s.store.Close()
				t.Fatal("New accepted an --http-listen it cannot bind")
			}
			want := "--http-listen " + addr + ": "
			if !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), `(use another HOST:PORT, or "" to serve no metrics and probes)`) {
				t.Errorf("got %q, want it to start with %q and say what to do", err, want)
			}
		})
	}
}
