package docker

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"

	"github.com/tentacle-deploy/tentacle/agent/creds"
	"github.com/tentacle-deploy/tentacle/internal/spec"
	"github.com/tentacle-deploy/tentacle/internal/testimage"
)

// Tests against the real engine: see engine_test.go for the fixture.

func TestDeployFirstRelease(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	digest := f.push("1.0", testimage.WithEnv("FROM_IMAGE", "yes"))

	task := f.task("1.0", digest,
		env("GREETING", "hello world"), env("TESTAPP_PRINT_ENV", "GREETING,FROM_IMAGE"),
		env("TESTAPP_LINES", "6"), env("TESTAPP_MESSAGE", "v1"), env("TESTAPP_STDERR", "1"))
	res, err, rec := f.run(context.Background(), task)
	if err != nil {
		t.Fatalf("Deploy: %v\nlogs:\n%s", err, rec.logs.String())
	}
	if res.Digest != digest {
		t.Errorf("Result.Digest = %s, want the pushed %s", res.Digest, digest)
	}

	c := f.inspect(f.app)
	if c == nil {
		t.Fatalf("no container named %s", f.app)
	}
	if c.ID != res.ContainerID || !c.State.Running {
		t.Errorf("container %s: id %s running %v; want id %s running", f.app, c.ID, c.State.Running, res.ContainerID)
	}
	if want := f.repository() + "@" + digest; c.Config.Image != want {
		t.Errorf("container image = %s, want %s", c.Config.Image, want)
	}
	// Off during the gate, the spec's policy once it has passed.
	if p := c.HostConfig.RestartPolicy; p.Name != container.RestartPolicyUnlessStopped {
		t.Errorf("restart policy = %+v, want unless-stopped", p)
	}
	for _, e := range []string{"GREETING=hello world", "FROM_IMAGE=yes", "TESTAPP_MESSAGE=v1"} {
		if !slices.Contains(c.Config.Env, e) {
			t.Errorf("container env %q lacks %s", c.Config.Env, e)
		}
	}
	wantLabels := map[string]string{LabelManaged: "true", LabelApp: f.app, LabelRelease: "rel-1.0",
		LabelReleaseVersion: "1.0", LabelDeployment: "dep-1.0", LabelTask: "task-1.0"}
	for k, v := range wantLabels {
		if c.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Config.Labels[k], v)
		}
	}

	logs := rec.logs.String()
	assertInOrder(t, logs, "env GREETING=hello world\n", "env FROM_IMAGE=yes\n",
		"line 1 v1\n", "line 2 v1\n", "line 3 v1\n", "line 4 v1\n", "line 5 v1\n", "line 6 v1\n")
	for _, s := range []string{"stderr 1\n", "stderr 3\n", "stderr 5\n"} {
		if !strings.Contains(logs, s) {
			t.Errorf("logs lack stderr line %q:\n%s", s, logs)
		}
	}
	if want := []Phase{PhasePulling, PhaseStarting, PhaseVerifying}; !slices.Equal(rec.phases, want) {
		t.Errorf("phases = %v, want %v (messages %q)", rec.phases, want, rec.msgs)
	}
	f.assertNoLeftovers()
}

func TestDeployReplacesContainer(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	d1 := f.push("1.0")
	d2 := f.push("2.0")
	if d1 == d2 {
		t.Fatal("the two test images have the same digest")
	}

	first, err, _ := f.run(context.Background(), f.task("1.0", d1, env("TESTAPP_MESSAGE", "v1")))
	if err != nil {
		t.Fatalf("first Deploy: %v", err)
	}
	// By tag this time: the digest must come from the engine.
	second, err, rec := f.run(context.Background(), f.task("2.0", "", env("TESTAPP_MESSAGE", "v2")))
	if err != nil {
		t.Fatalf("second Deploy: %v", err)
	}
	if second.Digest != d2 {
		t.Errorf("Result.Digest = %s, want %s", second.Digest, d2)
	}
	c := f.inspect(f.app)
	if c == nil || c.ID != second.ContainerID || !c.State.Running {
		t.Fatalf("container %s = %+v, want the new running container %s", f.app, c, second.ContainerID)
	}
	if want := f.repository() + "@" + d2; c.Config.Image != want {
		t.Errorf("image = %s, want %s", c.Config.Image, want)
	}
	if _, err := f.api.ContainerInspect(context.Background(), first.ContainerID); !cerrdefs.IsNotFound(err) {
		t.Errorf("old container %s: inspect error %v, want not found", first.ContainerID, err)
	}
	if logs := rec.logs.String(); strings.Contains(logs, "v1") || !strings.Contains(logs, "line 5 v2\n") {
		t.Errorf("logs of the second deploy must hold only the new container's output:\n%s", logs)
	}
	f.assertNoLeftovers()
}

func TestDeployExitingContainerRollsBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	d1 := f.push("1.0")
	d2 := f.push("2.0")
	first, err, _ := f.run(context.Background(), f.task("1.0", d1, env("TESTAPP_MESSAGE", "v1")))
	if err != nil {
		t.Fatalf("first Deploy: %v", err)
	}

	bad := f.task("2.0", d2, env("TESTAPP_MESSAGE", "v2"), env("TESTAPP_LINES", "3"), env("TESTAPP_EXIT", "3"))
	bad.Spec.ReadyAfter = 2 * time.Second
	res, err, rec := f.run(context.Background(), bad)
	if KindOf(err) != FailureContainerExited {
		t.Fatalf("Deploy error = %v (kind %q), want kind %s", err, KindOf(err), FailureContainerExited)
	}
	want := fmt.Sprintf("container %s exited with code 3 within its 2s ready period\nlast 3 lines of output of container %s:\nline 1 v2\nline 2 v2\nline 3 v2", f.app, f.app)
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	if res.Digest != d2 {
		t.Errorf("Result.Digest on failure = %q, want the pulled %s", res.Digest, d2)
	}
	assertInOrder(t, rec.logs.String(), "line 1 v2\n", "line 2 v2\n", "line 3 v2\n")

	c := f.inspect(f.app)
	if c == nil || c.ID != first.ContainerID || !c.State.Running {
		t.Fatalf("after rollback %s = %+v, want the old container %s running", f.app, c, first.ContainerID)
	}
	f.assertNoLeftovers()
}

func TestDeployPullFailures(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	digest := f.push("1.0")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	noCreds, _ := creds.New(nil, "")
	wrongCreds, _ := creds.New([]creds.Entry{{Registry: f.reg.Host(), Username: regUser, Password: "wrong"}}, "")
	host := f.reg.Host()
	zeros := "sha256:" + strings.Repeat("0", 64)
	tests := []struct {
		name   string
		creds  CredentialSource
		mutate func(*Task)
		kind   FailureKind
		want   string
	}{
		{"no credentials", noCreds, nil, FailureImageUnauthorized,
			"pull " + f.repository() + "@" + digest + ": registry " + host + " requires credentials and the agent has none for it (unauthorized): add an entry for it to the agent config"},
		{"wrong password", wrongCreds, nil, FailureImageUnauthorized,
			"pull " + f.repository() + "@" + digest + ": registry " + host + " refused the agent's credentials (unauthorized): fix its entry in the agent config"},
		{"unknown tag", f.creds, func(t *Task) { t.Digest, t.Tag = "", "nope" }, FailureImageNotFound,
			"pull " + f.repository() + ":nope: " + f.repoPath() + ":nope not found in registry " + host},
		{"unknown digest", f.creds, func(t *Task) { t.Digest = zeros }, FailureImageNotFound,
			"pull " + f.repository() + "@" + zeros + ": " + f.repoPath() + "@" + zeros + " not found in registry " + host},
		{"registry down", f.creds, func(t *Task) { t.Repository = closed + "/team/web" }, FailureRegistryUnreachable,
			"pull " + closed + "/team/web@" + digest + ": registry " + closed + " is unreachable from this host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			task := f.task("1.0", digest)
			task.Application = appName(t)
			if tt.mutate != nil {
				tt.mutate(&task)
			}
			d := New(f.api, tt.creds, nil)
			_, err := d.Deploy(context.Background(), task, nil, nil)
			if KindOf(err) != tt.kind {
				t.Fatalf("Deploy error = %v (kind %q), want kind %s", err, KindOf(err), tt.kind)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error =\n%s\nwant it to start with\n%s", err, tt.want)
			}
			if strings.Contains(err.Error(), regPass) {
				t.Errorf("error contains the password: %v", err)
			}
			if c := f.inspect(task.Application + suffixNext); c != nil {
				t.Errorf("a container was created although the pull failed")
			}
		})
	}
}

func TestDeployPublishesPorts(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	digest := f.push("1.0")
	task := f.task("1.0", digest, env("TESTAPP_LISTEN", ":8080"))
	task.Spec.Ports = []spec.Port{{ContainerPort: 8080, HostIP: "127.0.0.1"}} // host port 0: any free one
	res, err, _ := f.run(context.Background(), task)
	if err != nil {
		t.Fatalf("Deploy: %v", err)
	}
	c, err := f.api.ContainerInspect(context.Background(), res.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	bindings := c.NetworkSettings.Ports["8080/tcp"]
	if len(bindings) == 0 || bindings[0].HostPort == "" {
		t.Fatalf("port 8080/tcp bindings = %v, want one", bindings)
	}
	resp, err := http.Get("http://127.0.0.1:" + bindings[0].HostPort + "/")
	if err != nil {
		t.Fatalf("GET published port: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok" {
		t.Errorf("GET = %d %q, want 200 ok", resp.StatusCode, body)
	}

	// A host port already taken makes the start fail: the engine's error,
	// and the running container stays.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	clash := f.task("1.0", digest, env("TESTAPP_LISTEN", ":8080"))
	clash.Spec.Ports = []spec.Port{{ContainerPort: 8080, HostIP: "127.0.0.1", HostPort: uint32(busy.Addr().(*net.TCPAddr).Port)}}
	_, err, _ = f.run(context.Background(), clash)
	if KindOf(err) != FailureDocker || !strings.HasPrefix(err.Error(), "start container "+f.app+": ") {
		t.Fatalf("Deploy on a busy port: error = %v (kind %q), want kind docker from the start", err, KindOf(err))
	}
	if c := f.inspect(f.app); c == nil || c.ID != res.ContainerID || !c.State.Running {
		t.Errorf("the first container was not restored: %+v", c)
	}
	f.assertNoLeftovers()
}

func TestDeployHealthcheck(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	digest := f.push("1.0", testimage.WithHealthcheck(200*time.Millisecond, 2))

	healthy := f.task("1.0", digest)
	healthy.Spec.ReadyAfter = 30 * time.Second // a healthy verdict must not wait for it
	start := time.Now()
	first, err, rec := f.run(context.Background(), healthy)
	if err != nil {
		t.Fatalf("Deploy healthy: %v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("healthy deploy took %s: the gate waited for ReadyAfter instead of the HEALTHCHECK", d)
	}
	if !slices.ContainsFunc(rec.msgs, func(m string) bool { return strings.Contains(m, "to report healthy") }) {
		t.Errorf("progress %q does not mention the health check", rec.msgs)
	}

	unhealthy := f.task("1.0", digest, env("TESTAPP_HEALTH_EXIT", "1"))
	_, err, _ = f.run(context.Background(), unhealthy)
	if KindOf(err) != FailureUnhealthy || !strings.HasPrefix(err.Error(), "container "+f.app+" became unhealthy: last check exited with 1") {
		t.Fatalf("Deploy unhealthy error = %v (kind %q), want unhealthy: became unhealthy", err, KindOf(err))
	}
	if c := f.inspect(f.app); c == nil || c.ID != first.ContainerID || !c.State.Running {
		t.Errorf("the healthy container was not restored")
	}
	f.assertNoLeftovers()
}

func TestDeployRecoversFromInterruptedSwap(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	digest := f.push("1.0")
	first, err, _ := f.run(context.Background(), f.task("1.0", digest))
	if err != nil {
		t.Fatalf("first Deploy: %v", err)
	}
	// What a crash between "rename old aside" and "rename new" leaves: the
	// old container stopped as <app>.previous, the new one as <app>.next.
	ctx := context.Background()
	if err := f.api.ContainerStop(ctx, first.ContainerID, container.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := f.api.ContainerRename(ctx, first.ContainerID, f.app+suffixPrevious); err != nil {
		t.Fatal(err)
	}
	cfg, host := ContainerConfig(f.task("1.0", digest), f.repository()+"@"+digest)
	if _, err := f.api.ContainerCreate(ctx, cfg, host, nil, nil, f.app+suffixNext); err != nil {
		t.Fatal(err)
	}

	// A failing deploy must put the set-aside container back, running.
	bad := f.task("1.0", digest, env("TESTAPP_EXIT", "1"), env("TESTAPP_LINES", "1"))
	if _, err, _ := f.run(ctx, bad); KindOf(err) != FailureContainerExited {
		t.Fatalf("Deploy error = %v, want container_exited", err)
	}
	if c := f.inspect(f.app); c == nil || c.ID != first.ContainerID || !c.State.Running {
		t.Fatalf("the set-aside container was not restored as %s and started: %+v", f.app, c)
	}
	f.assertNoLeftovers()

	// A container the agent did not create is never removed.
	if _, err := f.api.ContainerCreate(ctx, &container.Config{Image: cfg.Image}, nil, nil, nil, f.app+suffixNext); err != nil {
		t.Fatal(err)
	}
	defer f.api.ContainerRemove(ctx, f.app+suffixNext, container.RemoveOptions{Force: true})
	_, err, _ = f.run(ctx, f.task("1.0", digest))
	want := fmt.Sprintf("container %s.next exists and was not created by tentacle: rename or remove it, the agent needs the name to swap %s", f.app, f.app)
	if KindOf(err) != FailureAgent || err.Error() != want {
		t.Errorf("Deploy error = %v (kind %q), want %q", err, KindOf(err), want)
	}
}

func TestEngineVersion(t *testing.T) {
	t.Parallel()
	api := engine(t)
	v, err := New(api, nil, nil).EngineVersion(context.Background())
	if err != nil || v == "" {
		t.Fatalf("EngineVersion = %q, %v", v, err)
	}
}

// assertInOrder checks that each part occurs in s after the previous one.
func assertInOrder(t *testing.T, s string, parts ...string) {
	t.Helper()
	rest := s
	for _, p := range parts {
		i := strings.Index(rest, p)
		if i < 0 {
			t.Errorf("%q missing or out of order in:\n%s", p, s)
			return
		}
		rest = rest[i+len(p):]
	}
}
