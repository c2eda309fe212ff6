package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/tentacle-deploy/tentacle/internal/pki"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// Identity is what enrollment leaves in the data dir.
type Identity struct {
	Server      string   `json:"server"`
	TargetID    string   `json:"target_id"`
	TargetName  string   `json:"target_name"`
	Environment string   `json:"environment"`
	Roles       []string `json:"roles"`
	CertPEM     []byte   `json:"-"`
	KeyPEM      []byte   `json:"-"`
	CAPEM       []byte   `json:"-"`
}

const (
	keyFile        = "agent.key"
	certFile       = "agent.crt"
	caFile         = "ca.crt"
	enrollmentFile = "enrollment.json"
)

// ErrNotEnrolled is returned by LoadIdentity for a data dir without an enrollment.
var ErrNotEnrolled = errors.New("not enrolled: run `tentacle enroll --server HOST:PORT --token TOKEN` first")

// ReadEnrollment reads only enrollment.json: who the agent is and which
// server it talks to. Unlike LoadIdentity it never touches the key files, so
// it is safe while the agent runs (tentacle status).
func ReadEnrollment(dataDir string) (Identity, error) {
	data, err := os.ReadFile(filepath.Join(dataDir, enrollmentFile))
	if errors.Is(err, os.ErrNotExist) {
		return Identity{}, fmt.Errorf("data dir %s: %w", dataDir, ErrNotEnrolled)
	}
	if err != nil {
		return Identity{}, err
	}
	var id Identity
	if err := json.Unmarshal(data, &id); err != nil {
		return Identity{}, fmt.Errorf("%s: %w", enrollmentFile, err)
	}
	return id, nil
}

// LoadIdentity reads the enrollment, key and certificates from dataDir,
// first finishing a certificate renewal a crash interrupted. It must not be
// called while an agent runs on dataDir (its renewal would be disturbed):
// use ReadEnrollment there.
func LoadIdentity(dataDir string) (Identity, error) {
	if err := recoverRenewal(dataDir); err != nil {
		return Identity{}, fmt.Errorf("finish an interrupted certificate renewal: %w", err)
	}
	id, err := ReadEnrollment(dataDir)
	if err != nil {
		return Identity{}, err
	}
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{{keyFile, &id.KeyPEM}, {certFile, &id.CertPEM}, {caFile, &id.CAPEM}} {
		if *f.dst, err = os.ReadFile(filepath.Join(dataDir, f.name)); err != nil {
			return Identity{}, fmt.Errorf("enrollment incomplete, enroll again: %w", err)
		}
	}
	return id, nil
}

// EnrollOptions are the `tentacle enroll` flags.
type EnrollOptions struct {
	Server  string
	Token   string
	DataDir string
	// Force replaces an existing enrollment.
	Force   bool
	Timeout time.Duration
}

// Enroll exchanges a join token for a client certificate. The agent trusts
// only a server whose CA matches the hash the token carries.
func Enroll(ctx context.Context, o EnrollOptions) (Identity, error) {
	host, _, err := net.SplitHostPort(o.Server)
	if err != nil {
		return Identity{}, fmt.Errorf("--server %q: want HOST:PORT", o.Server)
	}
	tok, err := pki.ParseJoinToken(o.Token)
	if err != nil {
		return Identity{}, fmt.Errorf("--token: %w", err)
	}
	if existing, err := LoadIdentity(o.DataDir); err == nil && !o.Force {
		return Identity{}, fmt.Errorf("already enrolled as target %s with %s (data dir %s): pass --force to enroll again", existing.TargetName, existing.Server, o.DataDir)
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return Identity{}, fmt.Errorf("data dir: %w", err)
	}
	// On Windows, modes mean nothing: limit the directory to SYSTEM and
	// Administrators (a no-op elsewhere, where 0700 does it).
	if err := pki.RestrictDir(o.DataDir); err != nil {
		return Identity{}, fmt.Errorf("data dir: %w", err)
	}
	hostname, _ := os.Hostname()
	keyPEM, csrPEM, err := pki.NewKeyAndCSR(hostname)
	if err != nil {
		return Identity{}, err
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if err := checkPinnedServer(ctx, o.Server, pki.PinnedTLSConfig(tok.CAHash, host), o.Timeout); err != nil {
		return Identity{}, err
	}
	conn, err := grpc.NewClient(o.Server, grpc.WithTransportCredentials(credentials.NewTLS(pki.PinnedTLSConfig(tok.CAHash, host))))
	if err != nil {
		return Identity{}, fmt.Errorf("--server %q: %w", o.Server, err)
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	resp, err := tentaclev1.NewAgentServiceClient(conn).Enroll(cctx, &tentaclev1.EnrollRequest{
		Token: o.Token, CsrPem: csrPEM, Hostname: hostname, Os: runtime.GOOS, Arch: runtime.GOARCH,
	})
	if err != nil {
		return Identity{}, enrollError(o.Server, err)
	}
	// Trust the CA bundle only if it holds the CA the token pinned.
	if err := bundleHolds(resp.GetCaPem(), tok.CAHash); err != nil {
		return Identity{}, err
	}
	id := Identity{
		Server: o.Server, TargetID: resp.GetTargetId(), TargetName: resp.GetTargetName(),
		Environment: resp.GetEnvironment(), Roles: resp.GetRoles(),
		CertPEM: resp.GetCertificatePem(), KeyPEM: keyPEM, CAPEM: resp.GetCaPem(),
	}
	meta, _ := json.MarshalIndent(id, "", "  ")
	// The key first and the enrollment record last: a crash in between
	// leaves a data dir that is plainly "not enrolled".
	for _, f := range []struct {
		name string
		data []byte
		perm os.FileMode
	}{{keyFile, keyPEM, 0o600}, {certFile, id.CertPEM, 0o644}, {caFile, id.CAPEM, 0o644}, {enrollmentFile, meta, 0o644}} {
		if err := pki.WriteFileAtomic(filepath.Join(o.DataDir, f.name), f.data, f.perm); err != nil {
			return Identity{}, fmt.Errorf("save enrollment: %w", err)
		}
	}
	return id, nil
}

// checkPinnedServer does one TLS handshake with the pinned configuration
// before any gRPC, so that "nothing answers" and "the server is not the one
// the token names" reach the operator as the different problems they are.
func checkPinnedServer(ctx context.Context, server string, cfg *tls.Config, timeout time.Duration) error {
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&tls.Dialer{Config: cfg}).DialContext(dctx, "tcp", server)
	if err == nil {
		return conn.Close()
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("cannot reach server at %s: %w", server, err)
	}
	return fmt.Errorf("refusing server at %s: %w", server, err)
}

// enrollError turns a failed Enroll call into a message for the operator.
func enrollError(server string, err error) error {
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded:
		return fmt.Errorf("cannot reach server at %s: %s", server, st.Message())
	case codes.PermissionDenied, codes.InvalidArgument:
		return fmt.Errorf("server refused enrollment: %s", st.Message())
	}
	return fmt.Errorf("enroll: %s", st.Message())
}

// bundleHolds checks that a CA bundle parses and contains the CA with hash.
func bundleHolds(bundle []byte, hash string) error {
	if _, err := pki.CAPoolFromPEM(bundle); err != nil {
		return fmt.Errorf("server sent an unusable CA bundle: %w", err)
	}
	var got []string
	for rest := bundle; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if c, err := x509.ParseCertificate(block.Bytes); err == nil {
			if pki.SPKIHash(c) == hash {
				return nil
			}
			got = append(got, pki.SPKIHash(c))
		}
	}
	return fmt.Errorf("server sent CA %s, but the token pins %s: refusing it", strings.Join(got, ", "), hash)
}

// dial opens the session connection; see pki.ClientTLSConfig for how
// renewal and CA rotation reach new connections.
func dial(server string, cert *atomic.Pointer[tls.Certificate], roots *atomic.Pointer[x509.CertPool]) (*grpc.ClientConn, error) {
	host, _, err := net.SplitHostPort(server)
	if err != nil {
		return nil, fmt.Errorf("server address %q: want HOST:PORT", server)
	}
	tlsCfg := pki.ClientTLSConfig(host, cert, roots)
	return grpc.NewClient(server,
		grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)),
		grpc.WithKeepaliveParams(clientKeepalive),
	)
}

// clientKeepalive notices a silently dead link (a NAT that forgot the
// connection, a cable pulled) in Time+Timeout, 15 s, rather than grpc's
// default of hours: after 10 s without traffic the agent pings, and a ping
// unanswered for 5 s closes the connection, which ends the session and
// the log stream. 10 s is grpc's least Time; the server's enforcement
// policy (server/server.go: MinTime 5 s, PermitWithoutStream) allows it.
var clientKeepalive = keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}
