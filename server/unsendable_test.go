package server

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// startServerAt runs a server on dir until stop is called.
func startServerAt(t *testing.T, dir string) (s *Server, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := New(ctx, Config{DataDir: dir, Listen: "127.0.0.1:0", Out: io.Discard}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return s, stop
}

// TestTaskThatCannotBePreparedFailsInsteadOfBlockingTheTarget: a queued
// task whose sensitive variable no longer opens (the key file was replaced
// while the agent was away) fails with the reason, and its deployment
// ends, rather than ending the target's session on every reconnect.
func TestTaskThatCannotBePreparedFailsInsteadOfBlockingTheTarget(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, stop := startServerAt(t, dir)
	c := adminClient(t, s, s.BootstrapToken)
	ctx := ctxT(t)
	_, certPEM, keyPEM := enrollRaw(t, s, c, "prod")
	tok, err := c.CreateAdminToken(ctx, &tentaclev1.CreateAdminTokenRequest{Name: "ops", Role: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	c.CreateApplication(ctx, &tentaclev1.CreateApplicationRequest{Name: "web", ImageRepository: "r.example.com/web"})
	if _, err := c.SetVariable(ctx, setVar("web", "DB_PASSWORD", testSecret, true, nil)); err != nil {
		t.Fatal(err)
	}
	c.CreateRelease(ctx, &tentaclev1.CreateReleaseRequest{Application: "web", ImageTag: "1.0"})
	dep, err := c.CreateDeployment(ctx, &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.0", Environment: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	stop()

	other := make([]byte, variablesKeyLen)
	rand.Read(other)
	if err := os.WriteFile(filepath.Join(dir, variablesKeyFile), other, 0o600); err != nil {
		t.Fatal(err)
	}
	s2, _ := startServerAt(t, dir)
	c2 := adminClient(t, s2, tok.GetToken())
	ac, _ := agentConn(t, s2, certPEM, keyPEM)
	connectHolding(t, ac)
	got := waitState(t, c2, dep.GetDeployment().GetId(), tentaclev1.DeploymentState_DEPLOYMENT_STATE_FAILED)
	task := got.GetTasks()[0]
	if task.GetState() != tentaclev1.TaskState_TASK_STATE_FAILED || !strings.HasPrefix(task.GetMessage(), "the server could not prepare the task: ") {
		t.Fatalf("task = %v; want failed, saying the server could not prepare it", task)
	}
	// The session stays up: a second deployment is refused up front, with
	// the same reason, instead of reaching the agent.
	_, err = c2.CreateDeployment(ctx, &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.0", Environment: "prod"})
	if err == nil {
		t.Fatal("a deployment whose variables cannot be opened was accepted")
	}
}
