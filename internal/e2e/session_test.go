package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tentacle-deploy/tentacle/agent"
	"github.com/tentacle-deploy/tentacle/agent/docker"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
	"github.com/tentacle-deploy/tentacle/server"
)

// These tests run the real server and the real agent session in one
// process, over mutual-TLS gRPC on loopback. Only the Docker seam is fake
// (fakeRunner), so the protocol is tested without an engine; the real
// engine is exercised in agent/docker and in the process-level e2e test.

const fakeDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

// fakeRunner stands in for agent/docker.Deployer.
type fakeRunner struct {
	mu    sync.Mutex
	calls map[string]int
	// hold, when set, keeps Deploy running until it is closed or ctx ends.
	hold    chan struct{}
	started chan string
}

func newFakeRunner() *fakeRunner {
	return &fakeRunner{calls: map[string]int{}, started: make(chan string, 16)}
}

func (f *fakeRunner) Deploy(ctx context.Context, t docker.Task, progress func(docker.Progress), logs io.Writer) (docker.Result, error) {
	f.mu.Lock()
	f.calls[t.ID]++
	hold := f.hold
	f.mu.Unlock()
	select { // only tests that hold tasks read this
	case f.started <- t.ID:
	default:
	}
	progress(docker.Progress{Phase: docker.PhasePulling, Message: "pulling " + t.Repository + ":" + t.Tag})
	progress(docker.Progress{Phase: docker.PhaseStarting, Message: "starting " + t.Application})
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(logs, "line %d %s\n", i, t.Spec.Env[0].Value)
	}
	progress(docker.Progress{Phase: docker.PhaseVerifying, Message: "waiting"})
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return docker.Result{}, ctx.Err()
		}
	}
	return docker.Result{Digest: fakeDigest, ContainerID: "c-" + t.ID}, nil
}

func (f *fakeRunner) EngineVersion(context.Context) (string, error) { return "fake-engine", nil }

// Reconcile finds nothing: the fake creates no containers.
func (f *fakeRunner) Reconcile(context.Context, docker.Task, func(docker.Progress), io.Writer) (docker.Result, error) {
	return docker.Result{}, docker.ErrNotCreated
}

func (f *fakeRunner) callCount(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id]
}

// testLogger logs into the test's output; benchmarks log nothing, so the
// figures measure Tentacle rather than the test log.
func testLogger(t testing.TB) *zap.Logger {
	if _, ok := t.(*testing.B); ok {
		return zap.NewNop()
	}
	return zaptest.NewLogger(t)
}

type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (bearer) RequireTransportSecurity() bool { return true }

type cluster struct {
	t       testing.TB
	dataDir string
	addr    string
	srv     *server.Server
	stop    func()
	admin   tentaclev1.AdminServiceClient
	token   string
}

// startCluster starts a server on a loopback port (the same port again when
// addr is given: a restart).
func startCluster(t testing.TB, dataDir, addr string) *cluster {
	return startClusterWith(t, server.Config{DataDir: dataDir, Listen: addr})
}

func startClusterWith(t testing.TB, cfg server.Config) *cluster {
	t.Helper()
	return startClusterLogged(t, cfg, testLogger(t).Named("server"))
}

// startClusterLogged is startClusterWith with the server logging to log.
func startClusterLogged(t testing.TB, cfg server.Config, log *zap.Logger) *cluster {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	cfg.HeartbeatInterval, cfg.Out = time.Second, io.Discard
	dataDir := cfg.DataDir
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	c := &cluster{t: t, dataDir: dataDir, addr: srv.Addr(), srv: srv}
	c.stop = sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(c.stop)
	tok := srv.BootstrapToken
	if tok == "" {
		if tok, err = srv.CreateAdminToken(ctx, "test", server.RoleAdmin, 0); err != nil {
			t.Fatal(err)
		}
	}
	c.admin = c.adminClient(tok)
	c.token = tok
	return c
}

// adminClient dials the server's admin API with the admin token tok.
func (c *cluster) adminClient(tok string) tentaclev1.AdminServiceClient {
	c.t.Helper()
	caPEM, _ := c.srv.CA()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13})),
		grpc.WithPerRPCCredentials(bearer(tok)))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { conn.Close() })
	return tentaclev1.NewAdminServiceClient(conn)
}

func (c *cluster) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	c.t.Cleanup(cancel)
	return ctx
}

func (c *cluster) must(_ any, err error) {
	c.t.Helper()
	if err != nil {
		c.t.Fatal(err)
	}
}

// enroll enrolls an agent data dir into env through the real Enroll call.
func (c *cluster) enroll(env, dataDir string) {
	c.t.Helper()
	resp, err := c.admin.CreateJoinToken(c.ctx(), &tentaclev1.CreateJoinTokenRequest{Environment: env, Ttl: durationpb.New(time.Minute)})
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := agent.Enroll(c.ctx(), agent.EnrollOptions{Server: c.addr, Token: resp.GetToken(), DataDir: dataDir}); err != nil {
		c.t.Fatal(err)
	}
}

// runAgent runs an agent until the returned stop is called.
func runAgent(t testing.TB, dataDir string, r agent.Runner) (stop func()) {
	t.Helper()
	a, err := agent.New(agent.Config{DataDir: dataDir}, r, testLogger(t).Named("agent"))
	if err != nil {
		t.Fatal(err)
	}
	a.SetStopGrace(time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	stop = sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop)
	return stop
}

func (c *cluster) setupApp(env, app string) {
	c.must(c.admin.CreateEnvironment(c.ctx(), &tentaclev1.CreateEnvironmentRequest{Name: env}))
	c.must(c.admin.CreateApplication(c.ctx(), &tentaclev1.CreateApplicationRequest{Name: app, ImageRepository: "127.0.0.1:5000/team/" + app,
		RunSpec: &tentaclev1.RunSpec{Env: []*tentaclev1.EnvVar{{Name: "GREETING", Value: "hello"}}}}))
	c.must(c.admin.CreateRelease(c.ctx(), &tentaclev1.CreateReleaseRequest{Application: app, ImageTag: "1.0"}))
}

func (c *cluster) deploy(env, app, version string) string {
	c.t.Helper()
	resp, err := c.admin.CreateDeployment(c.ctx(), &tentaclev1.CreateDeploymentRequest{Application: app, ReleaseVersion: version, Environment: env})
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.GetDeployment().GetId()
}

// wait follows the deployment until it finishes and returns the final view.
func (c *cluster) wait(id string) *tentaclev1.WatchDeploymentResponse {
	c.t.Helper()
	stream, err := c.admin.WatchDeployment(c.ctx(), &tentaclev1.WatchDeploymentRequest{Id: id})
	if err != nil {
		c.t.Fatal(err)
	}
	var last *tentaclev1.WatchDeploymentResponse
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return last
		}
		if err != nil {
			c.t.Fatalf("watch %s: %v", id, err)
		}
		last = m
	}
}

func (c *cluster) taskLog(taskID string) string {
	c.t.Helper()
	stream, err := c.admin.ReadTaskLog(c.ctx(), &tentaclev1.ReadTaskLogRequest{TaskId: taskID, Follow: true})
	if err != nil {
		c.t.Fatal(err)
	}
	var b strings.Builder
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return b.String()
		}
		if err != nil {
			c.t.Fatal(err)
		}
		b.Write(m.GetData())
	}
}

func TestSessionRunsTaskOnceAndReportsEverything(t *testing.T) {
	t.Parallel()
	c := startCluster(t, t.TempDir(), "")
	c.setupApp("test", "web")
	agentDir := t.TempDir()
	c.enroll("test", agentDir)
	r := newFakeRunner()
	runAgent(t, agentDir, r)

	id := c.deploy("test", "web", "1.0")
	final := c.wait(id)
	if final.GetDeployment().GetState() != tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED {
		t.Fatalf("deployment = %v", final)
	}
	task := final.GetTasks()[0]
	if task.GetImageDigest() != fakeDigest || task.GetState() != tentaclev1.TaskState_TASK_STATE_SUCCEEDED {
		t.Fatalf("task = %v", task)
	}
	if n := r.callCount(task.GetId()); n != 1 {
		t.Fatalf("task ran %d times, want 1", n)
	}
	log := c.taskLog(task.GetId())
	for _, want := range []string{"tentacle: pulling: pulling 127.0.0.1:5000/team/web:1.0\n", "line 1 hello\nline 2 hello\nline 3 hello\n", "tentacle: succeeded:"} {
		if !strings.Contains(log, want) {
			t.Errorf("task log lacks %q:\n%s", want, log)
		}
	}
	// The release is pinned to the digest the first pull resolved.
	rels, _ := c.admin.ListReleases(c.ctx(), &tentaclev1.ListReleasesRequest{Application: "web"})
	if d := rels.GetReleases()[0].GetImageDigest(); d != fakeDigest {
		t.Fatalf("release digest = %q, want pinned %s", d, fakeDigest)
	}
	// Several heartbeats (1 s apart here) later, the target still shows
	// what its agent reported in Hello.
	time.Sleep(2500 * time.Millisecond)
	targets, _ := c.admin.ListTargets(c.ctx(), &tentaclev1.ListTargetsRequest{})
	if tg := targets.GetTargets()[0]; !tg.GetConnected() || tg.GetDockerVersion() != "fake-engine" || tg.GetEnvironment() != "test" ||
		tg.GetOs() == "" || tg.GetAgentVersion() == "" {
		t.Fatalf("target after heartbeats = %v", tg)
	}
}

func TestOfflineAgentGetsQueuedTaskWhenItReturns(t *testing.T) {
	t.Parallel()
	c := startCluster(t, t.TempDir(), "")
	c.setupApp("test", "web")
	agentDir := t.TempDir()
	c.enroll("test", agentDir)
	id := c.deploy("test", "web", "1.0") // the agent is not running yet

	time.Sleep(200 * time.Millisecond)
	got, _ := c.admin.GetDeployment(c.ctx(), &tentaclev1.GetDeploymentRequest{Id: id})
	if s := got.GetTasks()[0].GetState(); s != tentaclev1.TaskState_TASK_STATE_QUEUED {
		t.Fatalf("task of an offline agent is %v, want queued", s)
	}
	runAgent(t, agentDir, newFakeRunner())
	if s := c.wait(id).GetDeployment().GetState(); s != tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED {
		t.Fatalf("deployment = %v", s)
	}
}

func TestAgentRestartDoesNotRunTaskTwice(t *testing.T) {
	t.Parallel()
	c := startCluster(t, t.TempDir(), "")
	c.setupApp("test", "web")
	agentDir := t.TempDir()
	c.enroll("test", agentDir)
	r := newFakeRunner()
	r.hold = make(chan struct{})
	stop := runAgent(t, agentDir, r)
	id := c.deploy("test", "web", "1.0")
	taskID := <-r.started
	stop() // the agent stops mid-task and the task outlasts the grace: cancelled, old container restored

	// Past the stop grace the task was cancelled, and that was reported
	// before the agent exited.
	got, _ := c.admin.GetDeployment(c.ctx(), &tentaclev1.GetDeploymentRequest{Id: id})
	if s := got.GetTasks()[0].GetState(); s != tentaclev1.TaskState_TASK_STATE_CANCELLED {
		t.Fatalf("task after a stop past the grace = %v, want cancelled", got.GetTasks()[0])
	}
	runAgent(t, agentDir, r)
	c.wait(id)
	if n := r.callCount(taskID); n != 1 {
		t.Fatalf("task ran %d times across an agent restart, want 1", n)
	}
}

func TestAgentReconnectsAfterServerRestart(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	c := startCluster(t, dataDir, "")
	c.setupApp("test", "web")
	agentDir := t.TempDir()
	c.enroll("test", agentDir)
	r := newFakeRunner()
	runAgent(t, agentDir, r)
	c.wait(c.deploy("test", "web", "1.0"))

	c.stop()
	c2 := startCluster(t, dataDir, c.addr)
	c2.must(c2.admin.CreateRelease(c2.ctx(), &tentaclev1.CreateReleaseRequest{Application: "web", ImageTag: "2.0"}))
	final := c2.wait(c2.deploy("test", "web", "2.0"))
	if s := final.GetDeployment().GetState(); s != tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED {
		t.Fatalf("deployment after server restart = %v", final)
	}
}

func TestAgentStopLetsTheRunningTaskFinishAndReports(t *testing.T) {
	t.Parallel()
	c := startCluster(t, t.TempDir(), "")
	c.setupApp("test", "web")
	agentDir := t.TempDir()
	c.enroll("test", agentDir)
	r := newFakeRunner()
	r.hold = make(chan struct{})
	stop := runAgent(t, agentDir, r)
	id := c.deploy("test", "web", "1.0")
	<-r.started
	go func() { time.Sleep(300 * time.Millisecond); close(r.hold) }() // finishes within the grace
	stop()
	// Reported before Run returned: no restart needed to see the outcome.
	got, _ := c.admin.GetDeployment(c.ctx(), &tentaclev1.GetDeploymentRequest{Id: id})
	if s := got.GetDeployment().GetState(); s != tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED {
		t.Fatalf("deployment after a stop during its task = %v, want succeeded", got)
	}
	if log := c.taskLog(got.GetTasks()[0].GetId()); !strings.Contains(log, "tentacle: succeeded:") {
		t.Fatalf("task log not complete at exit:\n%s", log)
	}
}
