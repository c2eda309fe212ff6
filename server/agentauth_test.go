package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tentacle-deploy/tentacle/internal/pki"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// agentConn dials the server as an agent presenting certPEM/keyPEM (none
// when empty) and records the local address it connects from.
func agentConn(t *testing.T, s *Server, certPEM, keyPEM []byte) (tentaclev1.AgentServiceClient, *string) {
	t.Helper()
	caPEM, _ := s.CA()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
	if len(certPEM) > 0 {
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	local := new(string)
	var mu sync.Mutex
	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			if err == nil {
				mu.Lock()
				*local = c.LocalAddr().String()
				mu.Unlock()
			}
			return c, err
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return tentaclev1.NewAgentServiceClient(conn), local
}

// enrollRaw enrolls through the real Enroll call and returns the target id
// and the agent's certificate and key.
func enrollRaw(t *testing.T, s *Server, c tentaclev1.AdminServiceClient, env string) (string, []byte, []byte) {
	t.Helper()
	ctx := ctxT(t)
	c.CreateEnvironment(ctx, &tentaclev1.CreateEnvironmentRequest{Name: env})
	tok, err := c.CreateJoinToken(ctx, &tentaclev1.CreateJoinTokenRequest{Environment: env})
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, csrPEM, _ := pki.NewKeyAndCSR("host")
	ac, _ := agentConn(t, s, nil, nil)
	resp, err := ac.Enroll(ctx, &tentaclev1.EnrollRequest{Token: tok.GetToken(), CsrPem: csrPEM, Hostname: "host-" + env})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetTargetId(), resp.GetCertificatePem(), keyPEM
}

// connect opens a session and returns the stream after Welcome, or the
// error the server answered with.
func connect(t *testing.T, ac tentaclev1.AgentServiceClient, instance string) (tentaclev1.AgentService_ConnectClient, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := ac.Connect(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&tentaclev1.ConnectRequest{Msg: &tentaclev1.ConnectRequest_Hello{Hello: &tentaclev1.Hello{InstanceId: instance}}}); err != nil {
		return nil, err
	}
	if _, err := stream.Recv(); err != nil {
		return nil, err
	}
	return stream, nil
}

func TestAgentCertificateRejections(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := adminClient(t, s, s.BootstrapToken)

	t.Run("unenrolled client", func(t *testing.T) {
		ac, _ := agentConn(t, s, nil, nil)
		_, err := connect(t, ac, "i1")
		wantStatus(t, err, codes.Unauthenticated, "no client certificate: enroll this agent first (tentacle enroll --server … --token …)")
	})
	t.Run("certificate from another CA", func(t *testing.T) {
		other, _, err := pki.LoadOrCreateCA(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		id, _, _ := enrollRaw(t, s, c, "other-ca")
		keyPEM, csrPEM, _ := pki.NewKeyAndCSR("x")
		certPEM, _, _ := other.SignCSR(csrPEM, id, time.Hour)
		ac, _ := agentConn(t, s, certPEM, keyPEM)
		_, err = connect(t, ac, "i1")
		wantStatus(t, err, codes.Unauthenticated, "client certificate is not signed by this server's CA: enroll this agent with this server")
	})
	t.Run("expired certificate", func(t *testing.T) {
		id, _, _ := enrollRaw(t, s, c, "expired")
		keyPEM, csrPEM, _ := pki.NewKeyAndCSR("x")
		certPEM, cert, err := s.ca.SignCSR(csrPEM, id, time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		ac, _ := agentConn(t, s, certPEM, keyPEM)
		_, err = connect(t, ac, "i1")
		wantStatus(t, err, codes.Unauthenticated, fmt.Sprintf("client certificate of target %s expired at %s: enroll again with a new token", id, cert.NotAfter.UTC().Format(time.RFC3339)))
	})
	t.Run("a certificate the CA issued that is not the target's current one", func(t *testing.T) {
		id, _, _ := enrollRaw(t, s, c, "stale")
		keyPEM, csrPEM, _ := pki.NewKeyAndCSR("x")
		certPEM, _, _ := s.ca.SignCSR(csrPEM, id, time.Hour)
		ac, _ := agentConn(t, s, certPEM, keyPEM)
		_, err := connect(t, ac, "i1")
		wantStatus(t, err, codes.Unauthenticated, "client certificate is not target host-stale's current certificate")
	})
}

func TestRevokedTargetIsCutOffAndRefused(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := adminClient(t, s, s.BootstrapToken)
	_, certPEM, keyPEM := enrollRaw(t, s, c, "prod")
	ac, _ := agentConn(t, s, certPEM, keyPEM)
	stream, err := connect(t, ac, "i1")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.RevokeTarget(ctxT(t), &tentaclev1.RevokeTargetRequest{Target: "host-prod"})
	if err != nil {
		t.Fatal(err)
	}
	revokedAt := resp.GetTarget().GetRevokedAt().AsTime().UTC().Format(time.RFC3339)
	want := "target host-prod was revoked at " + revokedAt + ": it can only return by enrolling with a new token"

	// The live session ends within seconds, with the reason.
	errc := make(chan error, 1)
	go func() {
		for {
			if _, err := stream.Recv(); err != nil {
				errc <- err
				return
			}
		}
	}()
	select {
	case err := <-errc:
		wantStatus(t, err, codes.PermissionDenied, want)
	case <-time.After(5 * time.Second):
		t.Fatal("the revoked target's session is still open after 5s")
	}
	_, err = connect(t, ac, "i1")
	wantStatus(t, err, codes.PermissionDenied, want)

	// It gets no more tasks: the environment has no target left.
	c.CreateApplication(ctxT(t), &tentaclev1.CreateApplicationRequest{Name: "web", ImageRepository: "r.example.com/web"})
	c.CreateRelease(ctxT(t), &tentaclev1.CreateReleaseRequest{Application: "web", ImageTag: "1"})
	_, err = c.CreateDeployment(ctxT(t), &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1", Environment: "prod"})
	if !strings.Contains(fmt.Sprint(err), "has no targets") {
		t.Fatalf("deployment to an environment whose only target is revoked: %v", err)
	}
	_, err = c.RevokeTarget(ctxT(t), &tentaclev1.RevokeTargetRequest{Target: "nope"})
	wantStatus(t, err, codes.NotFound, `target "nope": not found: tentaclectl targets lists them`)
}

func TestClonedCertificateIsRefusedAndRaised(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := adminClient(t, s, s.BootstrapToken)
	_, certPEM, keyPEM := enrollRaw(t, s, c, "prod")
	first, firstAddr := agentConn(t, s, certPEM, keyPEM)
	if _, err := connect(t, first, "original"); err != nil {
		t.Fatal(err)
	}
	clone, _ := agentConn(t, s, certPEM, keyPEM)
	_, err := connect(t, clone, "clone")
	wantStatus(t, err, codes.PermissionDenied, "certificate of target host-prod is already connected from "+*firstAddr+": if this host is a clone, enroll it with its own token")

	targets, _ := c.ListTargets(ctxT(t), &tentaclev1.ListTargetsRequest{})
	if a := targets.GetTargets()[0].GetAlert(); !strings.Contains(a, "cloned host or stolen key") {
		t.Fatalf("target alert = %q", a)
	}
	audit, _ := c.ListAuditRecords(ctxT(t), &tentaclev1.ListAuditRecordsRequest{})
	found := false
	for _, r := range audit.GetRecords() {
		found = found || (r.GetAction() == "target.cloned_certificate" && r.GetObject() == "target/host-prod" && strings.HasPrefix(r.GetOutcome(), "denied: "))
	}
	if !found {
		t.Fatalf("no cloned-certificate audit record in %v", audit.GetRecords())
	}
	// The same agent process reconnecting is not a clone.
	again, _ := agentConn(t, s, certPEM, keyPEM)
	if _, err := connect(t, again, "original"); err != nil {
		t.Fatalf("reconnect of the same instance refused: %v", err)
	}
}

func TestJoinTokenRejections(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := adminClient(t, s, s.BootstrapToken)
	ctx := ctxT(t)
	c.CreateEnvironment(ctx, &tentaclev1.CreateEnvironmentRequest{Name: "prod"})
	ac, _ := agentConn(t, s, nil, nil)
	enroll := func(token string) error {
		_, csrPEM, _ := pki.NewKeyAndCSR("h")
		_, err := ac.Enroll(ctx, &tentaclev1.EnrollRequest{Token: token, CsrPem: csrPEM, Hostname: "h"})
		return err
	}

	one, _ := c.CreateJoinToken(ctx, &tentaclev1.CreateJoinTokenRequest{Environment: "prod", Uses: 1})
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = enroll(one.GetToken()) }()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		wantStatus(t, err, codes.PermissionDenied, fmt.Sprintf("token: join token %q is used up (1 of 1 uses)", one.GetTokenId()))
	}
	if ok != 1 {
		t.Fatalf("%d of 10 concurrent enrollments with a one-use token succeeded, want 1", ok)
	}
	wantStatus(t, enroll(one.GetToken()), codes.PermissionDenied, fmt.Sprintf("token: join token %q is used up (1 of 1 uses)", one.GetTokenId()))

	short, _ := c.CreateJoinToken(ctx, &tentaclev1.CreateJoinTokenRequest{Environment: "prod", Ttl: durationpb.New(time.Millisecond)})
	time.Sleep(20 * time.Millisecond)
	wantStatus(t, enroll(short.GetToken()), codes.PermissionDenied,
		fmt.Sprintf("token: join token %q expired at %s", short.GetTokenId(), short.GetExpiresAt().AsTime().UTC().Format(time.RFC3339)))

	revoked, _ := c.CreateJoinToken(ctx, &tentaclev1.CreateJoinTokenRequest{Environment: "prod", Uses: 5})
	if _, err := c.RevokeJoinToken(ctx, &tentaclev1.RevokeJoinTokenRequest{Id: revoked.GetTokenId()}); err != nil {
		t.Fatal(err)
	}
	if err := enroll(revoked.GetToken()); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("enroll with a revoked token: %v", err)
	}

	// A bad CSR is refused before the token is used: it still enrolls after.
	fresh, _ := c.CreateJoinToken(ctx, &tentaclev1.CreateJoinTokenRequest{Environment: "prod", Uses: 1})
	_, err := ac.Enroll(ctx, &tentaclev1.EnrollRequest{Token: fresh.GetToken(), CsrPem: []byte("not a csr"), Hostname: "h"})
	wantStatus(t, err, codes.InvalidArgument, "csr_pem: certificate request: not PEM")
	if err := enroll(fresh.GetToken()); err != nil {
		t.Fatalf("the token after a refused CSR: %v", err)
	}

	forged, _ := pki.NewJoinToken(s.ca.Hash())
	wantStatus(t, enroll(forged.String()), codes.PermissionDenied, fmt.Sprintf("token: join token %q is unknown", forged.ID))
	otherCA, _, _ := pki.LoadOrCreateCA(t.TempDir())
	foreign, _ := pki.NewJoinToken(otherCA.Hash())
	wantStatus(t, enroll(foreign.String()), codes.PermissionDenied, "token: it was issued by another server (CA hash differs)")
}

func TestRevokedAdminTokenAndAuditTrail(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	root := adminClient(t, s, s.BootstrapToken)
	ctx := ctxT(t)
	created, err := root.CreateAdminToken(ctx, &tentaclev1.CreateAdminTokenRequest{Name: "ci", Role: RoleDeployer})
	if err != nil {
		t.Fatal(err)
	}
	ci := adminClient(t, s, created.GetToken())
	if _, err := ci.ListEnvironments(ctx, &tentaclev1.ListEnvironmentsRequest{}); err != nil {
		t.Fatalf("new deployer token refused: %v", err)
	}
	_, err = ci.CreateEnvironment(ctx, &tentaclev1.CreateEnvironmentRequest{Name: "x"})
	wantStatus(t, err, codes.PermissionDenied, "role deployer may not call CreateEnvironment: it needs role admin")
	rev, err := root.RevokeAdminToken(ctx, &tentaclev1.RevokeAdminTokenRequest{Token: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ci.ListEnvironments(ctx, &tentaclev1.ListEnvironmentsRequest{})
	wantStatus(t, err, codes.Unauthenticated, "admin token ci was revoked at "+rev.GetInfo().GetRevokedAt().AsTime().UTC().Format(time.RFC3339))
	_, err = root.CreateAdminToken(ctx, &tentaclev1.CreateAdminTokenRequest{Name: "x", Role: "root"})
	wantStatus(t, err, codes.InvalidArgument, `role: "root": use viewer, deployer or admin`)

	recs, err := root.ListAuditRecords(ctx, &tentaclev1.ListAuditRecordsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs.GetRecords() {
		got = append(got, r.GetActor()+" "+r.GetAction()+" "+r.GetObject()+" "+r.GetOutcome())
		if r.GetPeer() == "" || r.GetAt() == nil {
			t.Errorf("audit record without peer or time: %v", r)
		}
	}
	want := []string{
		"admin-token:bootstrap CreateAdminToken admin-token/ci ok",
		"admin-token:ci CreateEnvironment environment/x denied: role deployer may not call CreateEnvironment: it needs role admin",
		"admin-token:bootstrap RevokeAdminToken admin-token/ci ok",
		"admin-token:ci ListEnvironments  denied: admin token ci was revoked at " + rev.GetInfo().GetRevokedAt().AsTime().UTC().Format(time.RFC3339),
		`admin-token:bootstrap CreateAdminToken admin-token/x failed: role: "root": use viewer, deployer or admin`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestRevokeAdminTokenNeverRecordsASecret(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := adminClient(t, s, s.BootstrapToken)
	_, err := c.RevokeAdminToken(ctxT(t), &tentaclev1.RevokeAdminTokenRequest{Token: s.BootstrapToken})
	wantStatus(t, err, codes.InvalidArgument, "token: give the token's id or name (tentaclectl admin-token list), not the token itself")
	recs, _ := c.ListAuditRecords(ctxT(t), &tentaclev1.ListAuditRecordsRequest{})
	for _, r := range recs.GetRecords() {
		if strings.Contains(r.String(), s.BootstrapToken) {
			t.Fatalf("audit record holds the token: %v", r)
		}
	}
}
