package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tentacle-deploy/tentacle/agent"
	"github.com/tentacle-deploy/tentacle/agent/docker"
	"github.com/tentacle-deploy/tentacle/server"
)

// realServer is a control server running in this process on a loopback
// port, its own store and CA in a temporary directory, with the CLI pointed
// at it over TLS with the bootstrap admin token. Targets are real agents
// in this process whose only fake is the container engine (fakeEngine).
type realServer struct {
	srv *server.Server
	h   *harness
	env map[string]string
}

func startRealServer(t *testing.T) *realServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	s, err := server.New(ctx, server.Config{DataDir: filepath.Join(dir, "server"), Listen: "127.0.0.1:0", Out: io.Discard}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	caPEM, _ := s.CA()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	h := &harness{addr: s.Addr(), caFile: caFile, configDir: filepath.Join(dir, "config")}
	return &realServer{srv: s, h: h, env: map[string]string{"TENTACLE_SERVER": s.Addr(), "TENTACLE_TOKEN": s.BootstrapToken, "TENTACLE_CA_FILE": caFile}}
}

func (r *realServer) run(t *testing.T, args ...string) result {
	t.Helper()
	return r.h.runEnv(t, context.Background(), r.env, args...)
}

// must runs the CLI and fails the test unless it exits 0.
func (r *realServer) must(t *testing.T, args ...string) result {
	t.Helper()
	res := r.run(t, args...)
	wantCode(t, res, 0)
	return res
}

// fakeEngine stands in for Docker under a real agent: it reports the pull
// and succeeds, or fails with failWith. With hold set it signals started
// and then waits until the task is cancelled.
type fakeEngine struct {
	mu       sync.Mutex
	failWith error
	hold     bool
	started  chan struct{}
}

func (e *fakeEngine) set(failWith error, hold bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failWith, e.hold = failWith, hold
	e.started = make(chan struct{}, 1)
}

func (e *fakeEngine) Deploy(ctx context.Context, t docker.Task, progress func(docker.Progress), _ io.Writer) (docker.Result, error) {
	progress(docker.Progress{Phase: docker.PhasePulling, Message: "pulling " + t.Repository + ":" + t.Tag})
	e.mu.Lock()
	err, hold, started := e.failWith, e.hold, e.started
	e.mu.Unlock()
	if err != nil {
		return docker.Result{}, err
	}
	if hold {
		started <- struct{}{}
		<-ctx.Done()
		return docker.Result{}, ctx.Err()
	}
	progress(docker.Progress{Phase: docker.PhaseStarting, Message: "starting"})
	return docker.Result{Digest: "sha256:" + strings.Repeat("ab", 32), ContainerID: "c-" + t.ID}, nil
}

func (e *fakeEngine) EngineVersion(context.Context) (string, error) { return "28.0.0-fake", nil }

func (e *fakeEngine) Reconcile(context.Context, docker.Task, func(docker.Progress), io.Writer) (docker.Result, error) {
	return docker.Result{}, docker.ErrNotCreated
}

// runningAgent is an enrolled agent running until stop or the test's end.
type runningAgent struct {
	name string
	stop func()
}

// startAgent enrolls an agent into env with roles (a join token made with
// the CLI) and runs it.
func (r *realServer) startAgent(t *testing.T, env, roles string, engine *fakeEngine) *runningAgent {
	t.Helper()
	args := []string{"token", "create", "--env", env, "-o", "json"}
	if roles != "" {
		args = append(args, "--roles", roles)
	}
	var tok struct{ Token string }
	if err := json.Unmarshal([]byte(r.must(t, args...).stdout), &tok); err != nil || tok.Token == "" {
		t.Fatalf("token create -o json: %v", err)
	}
	dataDir := t.TempDir()
	id, err := agent.Enroll(context.Background(), agent.EnrollOptions{Server: r.srv.Addr(), Token: tok.Token, DataDir: dataDir, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{DataDir: dataDir}, engine, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	a.SetStopGrace(time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return &runningAgent{name: id.TargetName, stop: stop}
}

// eventually runs the CLI until its stdout holds want; the server changes
// state on its own (a session closing), and there is no event to wait for.
func (r *realServer) eventually(t *testing.T, want string, args ...string) result {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		res := r.must(t, args...)
		if strings.Contains(res.stdout, want) {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q never printed %q; last:\n%s", args, want, res.stdout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var errImageMissing = errors.New("pull: manifest unknown")
