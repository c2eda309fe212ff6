package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// bearer attaches an admin token to every call.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (bearer) RequireTransportSecurity() bool { return true }

// startServer runs a real server on a loopback port with a fresh data dir.
func startServer(t *testing.T) *Server {
	t.Helper()
	return startServerLogging(t, zaptest.NewLogger(t))
}

func startServerLogging(t *testing.T, log *zap.Logger) *Server {
	t.Helper()
	s, _, _ := startServerWith(t, Config{}, log)
	return s
}

// startServerWith runs a real server with cfg (its data dir, address and
// output filled in) until stop is called; done is closed once Serve has
// returned.
func startServerWith(t *testing.T, cfg Config, log *zap.Logger) (s *Server, stop func(), done <-chan struct{}) {
	t.Helper()
	cfg.DataDir, cfg.Listen, cfg.Out = t.TempDir(), "127.0.0.1:0", io.Discard
	ctx, cancel := context.WithCancel(context.Background())
	s, err := New(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { s.Serve(ctx); close(served) }()
	stop = func() { cancel(); <-served }
	t.Cleanup(stop)
	return s, cancel, served
}

func adminClient(t *testing.T, s *Server, token string) tentaclev1.AdminServiceClient {
	t.Helper()
	caPEM, _ := s.CA()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	_, port, _ := net.SplitHostPort(s.Addr())
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS13}))}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(token)))
	}
	conn, err := grpc.NewClient("localhost:"+port, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return tentaclev1.NewAdminServiceClient(conn)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantStatus asserts the exact code and message a user would see.
func wantStatus(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code || st.Message() != msg {
		t.Errorf("got %v %q\nwant %v %q", st.Code(), st.Message(), code, msg)
	}
}
