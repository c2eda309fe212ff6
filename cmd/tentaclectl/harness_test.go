package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// The tests run the real command tree in-process against a fake admin server
// on real gRPC with TLS, so flags, metadata and output all round-trip.

// t0 is the time of every canned record; the CLI's clock is a minute later.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const testToken = "s3cret-admin-token"

// fakeAdmin records each request with its authorization header and answers
// from canned data. Tests set the fields before running the CLI.
type fakeAdmin struct {
	tentaclev1.UnimplementedAdminServiceServer

	// fail, when set, is returned by every call.
	fail error
	// watch is sent by WatchDeployment in order; then, with watchHold, the
	// stream stays open until the client goes away.
	watch     []*tentaclev1.WatchDeploymentResponse
	watchHold bool
	watching  chan struct{} // closed once the watch messages are sent
	logChunks []string
	// breakStreams makes the first call of each stream fail with
	// Unavailable after its first message, as a server restart would.
	breakStreams bool
	// dep, when set, is what GetDeployment answers.
	dep         *tentaclev1.Deployment
	tasks       []*tentaclev1.Task
	targets     []*tentaclev1.Target
	joinTokens  []*tentaclev1.JoinTokenInfo
	adminTokens []*tentaclev1.AdminTokenInfo
	audit       []*tentaclev1.AuditRecord
	// apps, when set, is what ListApplications answers.
	apps      []*tentaclev1.Application
	variables []*tentaclev1.Variable

	mu       sync.Mutex
	requests []proto.Message
	auth     []string
	broken   map[string]bool
}

// breakNow reports whether this stream should break now, once per method.
func (f *fakeAdmin) breakNow(method string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.breakStreams || f.broken[method] {
		return false
	}
	if f.broken == nil {
		f.broken = map[string]bool{}
	}
	f.broken[method] = true
	return true
}

var errRestart = status.Error(codes.Unavailable, "server is shutting down")

func (f *fakeAdmin) record(ctx context.Context, req proto.Message) error {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req)
	f.auth = append(f.auth, strings.Join(md.Get("authorization"), ","))
	return f.fail
}

// only returns the single request the CLI sent, failing the test otherwise.
func (f *fakeAdmin) only(t *testing.T) proto.Message {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) != 1 {
		t.Fatalf("server got %d requests, want 1: %v", len(f.requests), f.requests)
	}
	if f.auth[0] != "Bearer "+testToken {
		t.Errorf("authorization = %q, want %q", f.auth[0], "Bearer "+testToken)
	}
	return f.requests[0]
}

func (f *fakeAdmin) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

func (f *fakeAdmin) CreateEnvironment(ctx context.Context, req *tentaclev1.CreateEnvironmentRequest) (*tentaclev1.CreateEnvironmentResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &tentaclev1.CreateEnvironmentResponse{Environment: &tentaclev1.Environment{Name: req.GetName(), Description: req.GetDescription(), CreatedAt: timestamppb.New(t0)}}, nil
}

func (f *fakeAdmin) ListEnvironments(ctx context.Context, req *tentaclev1.ListEnvironmentsRequest) (*tentaclev1.ListEnvironmentsResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &tentaclev1.ListEnvironmentsResponse{Environments: []*tentaclev1.Environment{
		{Name: "test", CreatedAt: timestamppb.New(t0), AutoDeploy: true},
		{Name: "prod", Description: "Production\tEU", CreatedAt: timestamppb.New(t0), RequiredTargets: 2},
	}}, nil
}

func (f *fakeAdmin) CreateApplication(ctx context.Context, req *tentaclev1.CreateApplicationRequest) (*tentaclev1.CreateApplicationResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &tentaclev1.CreateApplicationResponse{Application: &tentaclev1.Application{Name: req.GetName(), ImageRepository: req.GetImageRepository(), RunSpec: req.GetRunSpec()}}, nil
}

func (f *fakeAdmin) ListApplications(ctx context.Context, req *tentaclev1.ListApplicationsRequest) (*tentaclev1.ListApplicationsResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	if f.apps != nil {
		return &tentaclev1.ListApplicationsResponse{Applications: f.apps}, nil
	}
	return &tentaclev1.ListApplicationsResponse{Applications: []*tentaclev1.Application{{
		Name: "web", ImageRepository: "r.io/team/web", CreatedAt: timestamppb.New(t0),
		RunSpec: &tentaclev1.RunSpec{Ports: []*tentaclev1.PortMapping{{ContainerPort: 80, HostPort: 8080, Protocol: "tcp"}, {ContainerPort: 53, Protocol: "udp", HostIp: "::1"}}},
	}}}, nil
}

func (f *fakeAdmin) CreateRelease(ctx context.Context, req *tentaclev1.CreateReleaseRequest) (*tentaclev1.CreateReleaseResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	v := req.GetVersion()
	if v == "" {
		v = req.GetImageTag()
	}
	return &tentaclev1.CreateReleaseResponse{Release: &tentaclev1.Release{Id: "rel-1", Application: req.GetApplication(), Version: v,
		ImageRepository: "r.io/team/web", ImageTag: req.GetImageTag(), ImageDigest: req.GetImageDigest()}}, nil
}

func (f *fakeAdmin) ListReleases(ctx context.Context, req *tentaclev1.ListReleasesRequest) (*tentaclev1.ListReleasesResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &tentaclev1.ListReleasesResponse{Releases: []*tentaclev1.Release{
		{Application: "web", Version: "1.4.2", ImageRepository: "r.io/team/web", ImageTag: "1.4.2", ImageDigest: "sha256:" + strings.Repeat("ab", 32), CreatedAt: timestamppb.New(t0)},
		{Application: "web", Version: "1.5.0", ImageRepository: "r.io/team/web", ImageTag: "1.5.0", CreatedAt: timestamppb.New(t0)},
	}}, nil
}

func (f *fakeAdmin) CreateDeployment(ctx context.Context, req *tentaclev1.CreateDeploymentRequest) (*tentaclev1.CreateDeploymentResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &tentaclev1.CreateDeploymentResponse{Deployment: deployment(tentaclev1.DeploymentState_DEPLOYMENT_STATE_RUNNING), Tasks: f.tasks}, nil
}

func (f *fakeAdmin) ListDeployments(ctx context.Context, req *tentaclev1.ListDeploymentsRequest) (*tentaclev1.ListDeploymentsResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &tentaclev1.ListDeploymentsResponse{Deployments: []*tentaclev1.Deployment{deployment(tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED)}}, nil
}

func (f *fakeAdmin) GetDeployment(ctx context.Context, req *tentaclev1.GetDeploymentRequest) (*tentaclev1.GetDeploymentResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	d := f.dep
	if d == nil {
		d = deployment(tentaclev1.DeploymentState_DEPLOYMENT_STATE_FAILED)
	}
	return &tentaclev1.GetDeploymentResponse{Deployment: d, Tasks: f.tasks}, nil
}

func (f *fakeAdmin) WatchDeployment(req *tentaclev1.WatchDeploymentRequest, stream grpc.ServerStreamingServer[tentaclev1.WatchDeploymentResponse]) error {
	if err := f.record(stream.Context(), req); err != nil {
		return err
	}
	for i, m := range f.watch {
		if i == 1 && f.breakNow("watch") {
			return errRestart
		}
		if err := stream.Send(m); err != nil {
			return err
		}
	}
	if f.watching != nil {
		close(f.watching)
	}
	if f.watchHold {
		<-stream.Context().Done()
	}
	return nil
}

func (f *fakeAdmin) ListTasks(ctx context.Context, req *tentaclev1.ListTasksRequest) (*tentaclev1.ListTasksResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &tentaclev1.ListTasksResponse{Tasks: f.tasks}, nil
}

func (f *fakeAdmin) ReadTaskLog(req *tentaclev1.ReadTaskLogRequest, stream grpc.ServerStreamingServer[tentaclev1.ReadTaskLogResponse]) error {
	if err := f.record(stream.Context(), req); err != nil {
		return err
	}
	var off uint64
	for i, c := range f.logChunks {
		if off >= req.GetOffset() {
			if i == 1 && f.breakNow("logs") {
				return errRestart
			}
			if err := stream.Send(&tentaclev1.ReadTaskLogResponse{Offset: off, Data: []byte(c)}); err != nil {
				return err
			}
		}
		off += uint64(len(c))
	}
	return nil
}

func (f *fakeAdmin) ListTargets(ctx context.Context, req *tentaclev1.ListTargetsRequest) (*tentaclev1.ListTargetsResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &tentaclev1.ListTargetsResponse{Targets: f.targets}, nil
}

func (f *fakeAdmin) CreateJoinToken(ctx context.Context, req *tentaclev1.CreateJoinTokenRequest) (*tentaclev1.CreateJoinTokenResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &tentaclev1.CreateJoinTokenResponse{Token: "join.abc123", TokenId: "tok-1", CaHash: "sha256:cafe",
		ExpiresAt: timestamppb.New(t0.Add(time.Minute + req.GetTtl().AsDuration()))}, nil
}

func (f *fakeAdmin) ListJoinTokens(ctx context.Context, req *tentaclev1.ListJoinTokensRequest) (*tentaclev1.ListJoinTokensResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &tentaclev1.ListJoinTokensResponse{Tokens: f.joinTokens}, nil
}

func (f *fakeAdmin) RevokeJoinToken(ctx context.Context, req *tentaclev1.RevokeJoinTokenRequest) (*tentaclev1.RevokeJoinTokenResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &tentaclev1.RevokeJoinTokenResponse{Token: &tentaclev1.JoinTokenInfo{Id: req.GetId(), Environment: "prod", Roles: []string{"web"},
		UsesAllowed: 3, UsesCount: 2, CreatedBy: "alice", RevokedAt: timestamppb.New(t0)}}, nil
}

func (f *fakeAdmin) RevokeTarget(ctx context.Context, req *tentaclev1.RevokeTargetRequest) (*tentaclev1.RevokeTargetResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &tentaclev1.RevokeTargetResponse{Target: &tentaclev1.Target{Id: "tgt-1", Name: req.GetTarget(), Environment: "prod", RevokedAt: timestamppb.New(t0)}}, nil
}

func (f *fakeAdmin) CreateAdminToken(ctx context.Context, req *tentaclev1.CreateAdminTokenRequest) (*tentaclev1.CreateAdminTokenResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	info := &tentaclev1.AdminTokenInfo{Id: "adm-1", Name: req.GetName(), Role: req.GetRole(), CreatedAt: timestamppb.New(t0.Add(time.Minute)), CreatedBy: "bootstrap"}
	if req.GetTtl() != nil {
		info.ExpiresAt = timestamppb.New(t0.Add(time.Minute + req.GetTtl().AsDuration()))
	}
	return &tentaclev1.CreateAdminTokenResponse{Token: "tntadm_" + strings.Repeat("a", 52), Info: info}, nil
}

func (f *fakeAdmin) ListAdminTokens(ctx context.Context, req *tentaclev1.ListAdminTokensRequest) (*tentaclev1.ListAdminTokensResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &tentaclev1.ListAdminTokensResponse{Tokens: f.adminTokens}, nil
}

func (f *fakeAdmin) RevokeAdminToken(ctx context.Context, req *tentaclev1.RevokeAdminTokenRequest) (*tentaclev1.RevokeAdminTokenResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &tentaclev1.RevokeAdminTokenResponse{Info: &tentaclev1.AdminTokenInfo{Id: "adm-2", Name: req.GetToken(), Role: "deployer", RevokedAt: timestamppb.New(t0)}}, nil
}

func (f *fakeAdmin) ListAuditRecords(ctx context.Context, req *tentaclev1.ListAuditRecordsRequest) (*tentaclev1.ListAuditRecordsResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &tentaclev1.ListAuditRecordsResponse{Records: f.audit}, nil
}

func deployment(state tentaclev1.DeploymentState) *tentaclev1.Deployment {
	return &tentaclev1.Deployment{Id: "dep-1", ReleaseId: "rel-1", Application: "web", ReleaseVersion: "1.4.2",
		Environment: "prod", State: state, CreatedAt: timestamppb.New(t0), CreatedBy: "alice", Kind: "deploy"}
}

// harness is one fake server and the settings to reach it.
type harness struct {
	fake      *fakeAdmin
	addr      string
	caFile    string
	configDir string // what the CLI takes for os.UserConfigDir
	// terminal, when set, is the CLI's view of its outputs as terminals.
	terminal func(io.Writer) (width, height int, ok bool)
}

func newHarness(t *testing.T, fake *fakeAdmin) *harness {
	t.Helper()
	dir := t.TempDir()
	caPEM, serverCert := newTestPKI(t)
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12})))
	tentaclev1.RegisterAdminServiceServer(srv, fake)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return &harness{fake: fake, addr: lis.Addr().String(), caFile: caFile, configDir: filepath.Join(dir, "config")}
}

// env is the environment that points the CLI at the fake server.
func (h *harness) env() map[string]string {
	return map[string]string{"TENTACLE_SERVER": h.addr, "TENTACLE_TOKEN": testToken, "TENTACLE_CA_FILE": h.caFile}
}

type result struct {
	stdout, stderr string
	code           int
}

func (h *harness) run(t *testing.T, args ...string) result {
	t.Helper()
	return h.runEnv(t, context.Background(), h.env(), args...)
}

func (h *harness) runEnv(t *testing.T, ctx context.Context, env map[string]string, args ...string) result {
	t.Helper()
	return h.runStdin(t, ctx, env, "", args...)
}

// runStdin runs the CLI with stdin as its standard input.
func (h *harness) runStdin(t *testing.T, ctx context.Context, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	c := newCLI(&stdout, &stderr)
	c.stdin = strings.NewReader(stdin)
	c.getenv = func(k string) string { return env[k] }
	c.userConfigDir = func() (string, error) { return h.configDir, nil }
	c.now = func() time.Time { return t0.Add(time.Minute) }
	c.loc = time.UTC
	if h.terminal != nil {
		c.terminal = h.terminal
	}
	code := c.run(ctx, args)
	return result{stdout.String(), stderr.String(), code}
}

// writeConfig writes the default config file.
func (h *harness) writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(h.configDir, "tentacle", "tentaclectl.yaml")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func wantCode(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}

// newTestPKI makes a throwaway CA and a server certificate it signed for
// 127.0.0.1 and localhost.
func newTestPKI(t *testing.T) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tentacle test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "tentacle-server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return caPEM, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
