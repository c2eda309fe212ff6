package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// connection is a client of the admin API for one command.
type connection struct {
	cc       *grpc.ClientConn
	admin    tentaclev1.AdminServiceClient
	settings settings
	timeout  time.Duration
	link     *linkState
}

func (c *connection) Close() error { return c.cc.Close() }

// callContext bounds one unary call by --timeout.
func (c *connection) callContext(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, c.timeout)
}

func (c *cli) connect(cmd *cobra.Command) (*connection, error) {
	s, err := c.resolveSettings(cmd)
	if err != nil {
		return nil, err
	}
	if s.token == "" {
		where := "token: in the config file (--config)"
		if s.configPath != "" {
			where = "token: in " + s.configPath
		}
		return nil, fmt.Errorf("no admin token: pass --token, set TENTACLE_TOKEN, or put %s", where)
	}
	if _, _, err := net.SplitHostPort(s.server); err != nil {
		return nil, badValue("server address %q (from %s): want HOST:PORT, e.g. %s", s.server, s.serverFrom, defaultServer)
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.caFile != "" {
		pem, err := os.ReadFile(s.caFile)
		if err != nil {
			return nil, fmt.Errorf("CA file (from %s): %w", s.caFileFrom, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s (from %s): no PEM certificate in it", s.caFile, s.caFileFrom)
		}
		tlsConfig.RootCAs = pool
	}
	link := &linkState{}
	dialer := &net.Dialer{Timeout: c.timeout}
	cc, err := grpc.NewClient(
		// passthrough hands HOST:PORT to our dialer, whose errors ("no such
		// host", "connection refused") are the ones worth showing.
		"passthrough:///"+s.server,
		grpc.WithTransportCredentials(recordingCreds{credentials.NewTLS(tlsConfig), link}),
		grpc.WithPerRPCCredentials(bearerToken(s.token)),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, "tcp", addr)
			if err != nil {
				link.failed(err)
			}
			return conn, err
		}),
		// Bound dial plus TLS handshake so that streams, which have no call
		// deadline, still fail fast against a server that does not answer.
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.DefaultConfig, MinConnectTimeout: c.timeout}),
		// A CLI should fail at once when the server is down, not queue calls.
		grpc.WithDefaultCallOptions(grpc.WaitForReady(false)),
	)
	if err != nil {
		return nil, fmt.Errorf("server %s: %w", s.server, err)
	}
	return &connection{cc: cc, admin: tentaclev1.NewAdminServiceClient(cc), settings: s, timeout: c.timeout, link: link}, nil
}

// call runs one unary RPC on a new connection, bounded by --timeout.
func call[Resp any](c *cli, cmd *cobra.Command, rpc func(context.Context, tentaclev1.AdminServiceClient) (Resp, error)) (Resp, error) {
	resp, conn, err := callKeeping(c, cmd, rpc)
	if conn != nil {
		conn.Close()
	}
	return resp, err
}

// callKeeping is call for a command that goes on with a stream (deploy
// --wait): on success the connection stays open and the caller closes it.
func callKeeping[Resp any](c *cli, cmd *cobra.Command, rpc func(context.Context, tentaclev1.AdminServiceClient) (Resp, error)) (Resp, *connection, error) {
	var zero Resp
	conn, err := c.connect(cmd)
	if err != nil {
		return zero, nil, err
	}
	ctx, cancel := conn.callContext(cmd.Context())
	defer cancel()
	resp, err := rpc(ctx, conn.admin)
	if err != nil {
		err = conn.explain(err)
		conn.Close()
		return zero, nil, err
	}
	return resp, conn, nil
}

// explain turns a gRPC error into the message a user should read: the
// server's own words, or why the server could not be reached.
func (c *connection) explain(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	server := c.settings.server
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded:
		if connected, linkErr := c.link.state(); !connected {
			cause := st.Message()
			if linkErr != nil {
				cause = linkErr.Error()
			}
			if st.Code() == codes.DeadlineExceeded || errors.Is(linkErr, context.DeadlineExceeded) {
				// gRPC's words for this ("waiting for connections to become
				// ready") do not say what the user can change.
				cause = fmt.Sprintf("no answer within %s (--timeout)", c.timeout)
			}
			msg := fmt.Sprintf("cannot reach server at %s: %s", server, cause)
			var unknownCA x509.UnknownAuthorityError
			if errors.As(linkErr, &unknownCA) {
				msg += "\nhint: trust the server's CA with --ca-file, TENTACLE_CA_FILE or ca_file: in the config file (tentacle-server dev prints it)"
			}
			return errors.New(msg)
		}
		if st.Code() == codes.DeadlineExceeded {
			return fmt.Errorf("server at %s did not answer within %s (raise --timeout)", server, c.timeout)
		}
		return fmt.Errorf("server at %s is unavailable: %s", server, st.Message())
	case codes.Unauthenticated:
		return fmt.Errorf("%s\nhint: the server did not accept the admin token; check --token, TENTACLE_TOKEN or token: in the config file", st.Message())
	case codes.Unimplemented:
		return fmt.Errorf("server at %s does not support this call (is it older than tentaclectl?): %s", server, st.Message())
	}
	return errors.New(st.Message())
}

// linkState remembers whether a TLS connection to the server was ever made
// and the last dial or handshake error, which gRPC's status only paraphrases.
type linkState struct {
	mu        sync.Mutex
	err       error
	connected bool
}

func (l *linkState) failed(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.err = err
}

func (l *linkState) succeeded() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.connected = true
}

func (l *linkState) state() (connected bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.connected, l.err
}

// recordingCreds is TLS that reports handshake outcomes to a linkState.
type recordingCreds struct {
	credentials.TransportCredentials
	link *linkState
}

func (r recordingCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := r.TransportCredentials.ClientHandshake(ctx, authority, raw)
	if err != nil {
		r.link.failed(err)
	} else {
		r.link.succeeded()
	}
	return conn, info, err
}

func (r recordingCreds) Clone() credentials.TransportCredentials {
	return recordingCreds{r.TransportCredentials.Clone(), r.link}
}

// bearerToken sends "authorization: Bearer <token>" with every call.
type bearerToken string

func (t bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

// RequireTransportSecurity keeps the token off plaintext connections.
func (bearerToken) RequireTransportSecurity() bool { return true }
