package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tentacle-deploy/tentacle/internal/testimage"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// Credentials of the registry the Docker scenarios start.
const (
	dockerRegUser = "bench"
	dockerRegPass = "bench-pass"
)

// dockerProc is a running binary; its output is kept in out unless the
// caller takes stdout itself.
type dockerProc struct {
	cmd  *exec.Cmd
	out  *testimage.SyncBuffer
	done chan struct{}
}

func startDockerProc(cmd *exec.Cmd) (*dockerProc, error) {
	p := &dockerProc{cmd: cmd, out: &testimage.SyncBuffer{}, done: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = p.out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = p.out
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { cmd.Wait(); close(p.done) }()
	return p, nil
}

// stop sends SIGTERM, then SIGKILL after 15 s.
func (p *dockerProc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// dockerSystem is a real server process, one real agent enrolled into env
// with its containers named prefix+app, and a registry with basic auth
// holding the test image.
type dockerSystem struct {
	b       *bench
	dir     string
	dataDir string
	home    string
	addr    string
	token   string
	metrics string // host:port of /metrics
	env     string
	prefix  string
	server  *serverProc
	agent   *dockerProc
	reg     *testimage.Registry
}

// startDockerSystem starts everything; close stops it and removes the
// agent's containers.
func startDockerSystem(ctx context.Context, b *bench, name string) (*dockerSystem, error) {
	s := &dockerSystem{b: b, dir: filepath.Join(b.workDir, name), env: name, prefix: "tbench-" + name + "-"}
	s.dataDir, s.home = filepath.Join(s.dir, "server"), filepath.Join(s.dir, "home")
	for _, d := range []string{s.dataDir, s.home} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	s.reg = testimage.NewRegistry(dockerRegUser, dockerRegPass)
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	b.logf("docker %s: server", name)
	srv, err := startServer(ctx, b, s.dataDir, "127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.server, s.addr, s.token, s.metrics = srv, srv.addr, srv.token, srv.httpAddr
	if _, err := s.ctl(ctx, "env", "create", name); err != nil {
		return nil, err
	}
	var tok struct{ Token string }
	if err := s.ctlJSON(ctx, &tok, "token", "create", "--env", name, "--ttl", "10m"); err != nil {
		return nil, err
	}
	agentDir := filepath.Join(s.dir, "agent")
	cfg := filepath.Join(agentDir, "tentacle.yaml")
	body := fmt.Sprintf("data_dir: %s\nlog:\n  format: json\ncontainer_prefix: %s\nregistries:\n  - registry: %s\n    username: %s\n    password: %s\n",
		filepath.Join(agentDir, "data"), s.prefix, s.reg.Host(), dockerRegUser, dockerRegPass)
	if err := os.MkdirAll(agentDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		return nil, err
	}
	if out, err := exec.CommandContext(ctx, b.bin("tentacle"), "enroll", "--config", cfg, "--server", s.addr, "--token", tok.Token).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("tentacle enroll: %v\n%s", err, out)
	}
	b.logf("docker %s: agent", name)
	if s.agent, err = startDockerProc(exec.Command(b.bin("tentacle"), "run", "--config", cfg)); err != nil {
		return nil, err
	}
	if err := waitUntil(ctx, "the agent's session", 30*time.Second, func() (bool, error) {
		var ts struct{ Targets []struct{ Connected bool } }
		if err := s.ctlJSON(ctx, &ts, "targets"); err != nil {
			return false, err
		}
		return len(ts.Targets) == 1 && ts.Targets[0].Connected, nil
	}); err != nil {
		return nil, fmt.Errorf("%w\nagent output:\n%s", err, tailOf(s.agent.out.String(), 2000))
	}
	ok = true
	return s, nil
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func waitUntil(ctx context.Context, what string, d time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(d)
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", d, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *dockerSystem) ctlEnv() []string {
	return append(os.Environ(), "TENTACLE_SERVER="+s.addr, "TENTACLE_TOKEN="+s.token,
		"TENTACLE_CA_FILE="+filepath.Join(s.dataDir, "pki", "ca.crt"), "HOME="+s.home, "XDG_CONFIG_HOME="+s.home)
}

// ctlCmd is tentaclectl against the system, not started.
func (s *dockerSystem) ctlCmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, s.b.bin("tentaclectl"), args...)
	cmd.Env = s.ctlEnv()
	return cmd
}

// ctl runs tentaclectl and returns its stdout; a non-zero exit is an error
// with its stderr.
func (s *dockerSystem) ctl(ctx context.Context, args ...string) (string, error) {
	cmd := s.ctlCmd(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("tentaclectl %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

func (s *dockerSystem) ctlJSON(ctx context.Context, v any, args ...string) error {
	out, err := s.ctl(ctx, append(args, "-o", "json")...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("tentaclectl %s -o json: %w", strings.Join(args, " "), err)
	}
	return nil
}

// pushImage pushes the test image as bench/REPO:TAG and returns its
// reference without the tag.
func (s *dockerSystem) pushImage(repo, tag string) (string, error) {
	img, err := testimage.NewImage()
	if err != nil {
		return "", err
	}
	if _, err := s.reg.PushImage("bench/"+repo, tag, img); err != nil {
		return "", err
	}
	return s.reg.Host() + "/bench/" + repo, nil
}

// taskOf waits for the one task of a deployment and returns its ID.
func (s *dockerSystem) taskOf(ctx context.Context, deployment string) (string, error) {
	var id string
	err := waitUntil(ctx, "the deployment's task", 30*time.Second, func() (bool, error) {
		var ts struct{ Tasks []struct{ ID, State string } }
		if err := s.ctlJSON(ctx, &ts, "tasks", "--deployment", deployment); err != nil {
			return false, err
		}
		if len(ts.Tasks) == 1 {
			id = ts.Tasks[0].ID
		}
		return id != "", nil
	})
	return id, err
}

// taskState is the state of task (e.g. TASK_STATE_SUCCEEDED).
func (s *dockerSystem) taskState(ctx context.Context, deployment string) (string, string, error) {
	var ts struct {
		Tasks []struct{ ID, State, Message string }
	}
	if err := s.ctlJSON(ctx, &ts, "tasks", "--deployment", deployment); err != nil {
		return "", "", err
	}
	if len(ts.Tasks) != 1 {
		return "", "", fmt.Errorf("deployment %s has %d tasks", deployment, len(ts.Tasks))
	}
	return ts.Tasks[0].State, ts.Tasks[0].Message, nil
}

// metric reads a counter from the server's /metrics.
func (s *dockerSystem) metric(ctx context.Context, name string) (float64, error) {
	return scrapeMetric(ctx, "http://"+s.metrics+"/metrics", name)
}

// removeContainers removes every container whose name starts with the
// system's prefix.
func (s *dockerSystem) removeContainers(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "docker", "ps", "-aq", "--filter", "name=^/"+s.prefix).Output()
	if err != nil {
		return fmt.Errorf("docker ps: %w", err)
	}
	ids := strings.Fields(string(out))
	if len(ids) == 0 {
		return nil
	}
	if out, err := exec.CommandContext(ctx, "docker", append([]string{"rm", "-f"}, ids...)...).CombinedOutput(); err != nil {
		return fmt.Errorf("docker rm: %v\n%s", err, out)
	}
	return nil
}

func (s *dockerSystem) close() {
	if s.agent != nil {
		s.agent.stop()
	}
	if s.server != nil {
		s.server.stop()
	}
	if s.reg != nil {
		s.reg.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.removeContainers(ctx); err != nil && !errors.Is(err, context.Canceled) {
		s.b.logf("docker %s: %v", s.env, err)
	}
}

// adminClient is a connection to the server's admin API over TLS with the
// bootstrap token, in this process.
func (s *dockerSystem) adminClient() (tentaclev1.AdminServiceClient, func(), error) {
	cc, admin, err := dialAdmin(s.addr, filepath.Join(s.dataDir, "pki", "ca.crt"), s.token)
	if err != nil {
		return nil, nil, err
	}
	return admin, func() { cc.Close() }, nil
}

// deployAndWait creates a deployment of app's release to the system's
// environment and follows it until its one task succeeded; it returns the
// time from the CreateDeployment call to the message saying so.
func (s *dockerSystem) deployAndWait(ctx context.Context, admin tentaclev1.AdminServiceClient, app, release string) (time.Duration, error) {
	began := time.Now()
	d, err := admin.CreateDeployment(ctx, &tentaclev1.CreateDeploymentRequest{Application: app, ReleaseVersion: release, Environment: s.env})
	if err != nil {
		return 0, fmt.Errorf("CreateDeployment: %w", err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := admin.WatchDeployment(wctx, &tentaclev1.WatchDeploymentRequest{Id: d.GetDeployment().GetId()})
	if err != nil {
		return 0, fmt.Errorf("WatchDeployment: %w", err)
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return 0, fmt.Errorf("WatchDeployment: %w", err)
		}
		for _, t := range msg.GetTasks() {
			switch t.GetState() {
			case tentaclev1.TaskState_TASK_STATE_SUCCEEDED:
				return time.Since(began), nil
			case tentaclev1.TaskState_TASK_STATE_FAILED, tentaclev1.TaskState_TASK_STATE_CANCELLED:
				return 0, fmt.Errorf("task %s %s: %s", t.GetId(), t.GetState(), t.GetMessage())
			}
		}
	}
}
