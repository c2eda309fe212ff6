package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/tentacle-deploy/tentacle/internal/faultproxy"
	"github.com/tentacle-deploy/tentacle/internal/testimage"
)

// Tests against the real engine: see engine_test.go for the fixture.

// deployed deploys the test app's image "1.0", built with opts, and
// returns its digest and the Deploy's result.
func (f *fixture) deployed(opts ...testimage.Option) (string, Result) {
	f.t.Helper()
	digest := f.push("1.0", opts...)
	res, err, rec := f.run(context.Background(), f.task("1.0", digest))
	if err != nil {
		f.t.Fatalf("Deploy: %v\n%s", err, rec.logs.String())
	}
	return digest, res
}

// watch subscribes to the engine's container events for the test, and
// returns once the subscription is live.
func (f *fixture) watch() (<-chan struct{}, <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	f.t.Cleanup(cancel)
	changes, ended := f.d.WatchContainers(ctx)
	f.awaitSubscribed(changes)
	return changes, ended
}

// awaitSubscribed waits until changes signals an event of a throwaway
// labelled container (named so that no Deployer owns it; from the image of
// the application's container, which must exist): the engine has
// then answered the subscription, and a change made now is not missed.
// Signals pending after it are dropped.
func (f *fixture) awaitSubscribed(changes <-chan struct{}) {
	f.t.Helper()
	ctx := context.Background()
	app := f.inspect(f.app)
	if app == nil {
		f.t.Fatalf("no container %s to take the image from", f.app)
	}
	cfg := &container.Config{Image: app.Config.Image, Labels: map[string]string{LabelApp: f.app + "-probe"}}
	for deadline := time.Now().Add(20 * time.Second); ; {
		c, err := f.api.ContainerCreate(ctx, cfg, nil, nil, nil, f.app+"-subscribed")
		if err != nil {
			f.t.Fatal(err)
		}
		f.api.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
		select {
		case <-changes:
			drain(changes)
			return
		case <-time.After(time.Second):
		}
		if time.Now().After(deadline) {
			f.t.Fatal("the event watch signalled nothing within 20s of subscribing")
		}
	}
}

// awaitChange waits for a change signal and returns how long it took
// since start.
func (f *fixture) awaitChange(changes <-chan struct{}, ended <-chan error, what string, start time.Time) time.Duration {
	f.t.Helper()
	select {
	case <-changes:
		return time.Since(start)
	case err := <-ended:
		f.t.Fatalf("%s: the event watch ended (%v) instead of signalling", what, err)
	case <-time.After(20 * time.Second):
		f.t.Fatalf("%s: no change signal within 20s", what)
	}
	return 0
}

// drain drops pending signals, so that the next one is caused by what the
// test does next.
func drain(changes <-chan struct{}) {
	for {
		select {
		case <-changes:
		case <-time.After(500 * time.Millisecond):
			return
		}
	}
}

// observeApp returns what Observe reports for the test's application,
// asserting that the engine is reachable and the application reported.
func (f *fixture) observeApp(apps []string) ContainerHealth {
	f.t.Helper()
	o := f.d.Observe(context.Background(), apps)
	if !o.Engine.Reachable {
		f.t.Fatalf("engine not reachable: %s", o.Engine.Error)
	}
	i := slices.IndexFunc(o.Containers, func(c ContainerHealth) bool { return c.Application == f.app })
	if i < 0 {
		f.t.Fatalf("Observe(%q) does not report %s: %+v", apps, f.app, o.Containers)
	}
	return o.Containers[i]
}

// eventually observes until ok holds, for up to 20s.
func (f *fixture) eventually(what string, ok func(ContainerHealth) bool) ContainerHealth {
	f.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		h := f.observeApp(nil)
		if ok(h) {
			return h
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: not within 20s; last observed %+v", what, h)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A deployed container, then killed by hand, removed by hand, and replaced
// by hand with one that keeps restarting: each change is signalled by the
// event watch and Observe reports it.
func TestObserveDriftByHand(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	digest, res := f.deployed()
	ctx := context.Background()

	// Found from its label alone, with no application named.
	h := f.observeApp(nil)
	if h.State != "running" || h.Health != HealthNone || h.ID != res.ContainerID || h.Name != f.app ||
		h.TaskID != "task-1.0" || h.ReleaseID != "rel-1.0" || h.Image != f.repository()+"@"+digest || h.ImageID == "" ||
		h.StartedAt.IsZero() || !h.FinishedAt.IsZero() {
		t.Errorf("deployed container observed as %+v", h)
	}
	// Another agent sharing the engine (another prefix) does not see it.
	other := New(f.api, nil, nil)
	other.SetContainerPrefix("zz-other-")
	if o := other.Observe(ctx, nil); slices.ContainsFunc(o.Containers, func(c ContainerHealth) bool { return c.Application == f.app }) {
		t.Errorf("a Deployer with another container prefix reports %s: %+v", f.app, o.Containers)
	}

	changes, ended := f.watch()
	start := time.Now()
	if err := f.api.ContainerKill(ctx, f.app, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	t.Logf("docker kill -> change signal: %s", f.awaitChange(changes, ended, "kill", start))
	h = f.eventually("killed container reported exited", func(h ContainerHealth) bool { return h.State == "exited" })
	if h.ExitCode != 137 || h.FinishedAt.IsZero() || h.TaskID != "task-1.0" {
		t.Errorf("killed container observed as %+v, want exit code 137, a finish time and its task", h)
	}

	drain(changes)
	start = time.Now()
	if err := f.api.ContainerRemove(ctx, f.app, container.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("docker rm -> change signal: %s", f.awaitChange(changes, ended, "remove", start))
	// No label left to find it by: the application must be named.
	if h := f.observeApp([]string{f.app}); h.State != StateMissing || h.ID != "" || h.Name != f.app {
		t.Errorf("removed container observed as %+v, want state missing", h)
	}

	drain(changes)
	// Made by hand, without the agent's labels, exiting at once and
	// restarted by Docker again and again.
	cfg := &container.Config{Image: f.repository() + "@" + digest, Env: []string{"TESTAPP_LINES=1", "TESTAPP_EXIT=3"}}
	host := &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyAlways}}
	created, err := f.api.ContainerCreate(ctx, cfg, host, nil, nil, f.app)
	if err != nil {
		t.Fatal(err)
	}
	// The fixture's cleanup finds containers by label; this one has none.
	t.Cleanup(func() { f.api.ContainerRemove(context.Background(), created.ID, container.RemoveOptions{Force: true}) })
	if err := f.api.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	f.awaitChange(changes, ended, "replace by hand", time.Now())
	apps := []string{f.app}
	var last ContainerHealth
	deadline := time.Now().Add(20 * time.Second)
	for last = f.observeApp(apps); last.RestartCount < 2 && time.Now().Before(deadline); last = f.observeApp(apps) {
		time.Sleep(100 * time.Millisecond)
	}
	if last.ID != created.ID || last.TaskID != "" || last.ReleaseID != "" || last.Image != cfg.Image || last.RestartCount < 2 {
		t.Errorf("container replaced by hand observed as %+v, want id %s, no task or release, restart count >= 2", last, created.ID)
	}
}

// brokenApp is a tar stream replacing the image's program with a file the
// kernel cannot execute: the running process goes on, but every
// HEALTHCHECK run ("/testapp health") fails from now on.
func brokenApp(t *testing.T) *bytes.Buffer {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := []byte("not a program\n")
	if err := tw.WriteHeader(&tar.Header{Name: "testapp", Mode: 0o755, Size: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	tw.Write(body)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// A healthy container turns unhealthy while it runs: a health_status event
// signals it and Observe reports it unhealthy, still running.
func TestObserveUnhealthy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.deployed(testimage.WithHealthcheck(200*time.Millisecond, 2))
	if h := f.observeApp(nil); h.Health != "healthy" {
		t.Fatalf("deployed container observed as %+v, want healthy", h)
	}
	changes, ended := f.watch()
	start := time.Now()
	if err := f.api.CopyToContainer(context.Background(), f.app, "/", brokenApp(t), container.CopyToContainerOptions{}); err != nil {
		t.Fatal(err)
	}
	h := f.eventually("container reported unhealthy", func(h ContainerHealth) bool { return h.Health == "unhealthy" })
	t.Logf("program broken -> observed unhealthy: %s", time.Since(start))
	// The health_status event, not only the last exec's, signals it.
	f.awaitChange(changes, ended, "healthcheck failing", start)
	if h.State != "running" {
		t.Errorf("unhealthy container observed as %+v, want still running", h)
	}
}

// An engine whose socket accepts but never answers is reported unreachable,
// with the error, after EngineTimeout; its event stream ends; once it
// answers again it is reported reachable.
func TestObserveEngineUnreachable(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	u, err := url.Parse(f.api.DaemonHost())
	if err != nil || u.Scheme != "unix" {
		t.Skipf("the engine is not on a unix socket (%s): the stalling proxy needs one", f.api.DaemonHost())
	}
	p, err := faultproxy.StartUnix(u.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	api, err := NewClient(client.WithHost(p.DockerHost()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Close() })
	d := New(api, nil, nil)
	ctx := context.Background()
	f.deployed()

	o := d.Observe(ctx, nil)
	if e := o.Engine; !e.Reachable || e.Error != "" || e.Version == "" || e.APIVersion == "" || e.RootDir == "" || e.DiskTotal == 0 || e.DiskFree > e.DiskTotal {
		t.Fatalf("engine through the proxy observed as %+v", e)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changes, ended := d.WatchContainers(wctx)
	f.awaitSubscribed(changes)

	p.Stall()
	start := time.Now()
	o = d.Observe(ctx, []string{"web"})
	took := time.Since(start)
	if o.Engine.Reachable || o.Engine.Error == "" || o.Containers != nil {
		t.Errorf("stalled engine observed as %+v, want unreachable with an error and no containers", o)
	}
	// Bounded, not fast: Observe must not hang on an engine that hangs.
	if took > 20*time.Second {
		t.Errorf("Observe of a stalled engine took %s", took)
	}
	t.Logf("stalled engine: unreachable after %s: %s", took, o.Engine.Error)
	select {
	case err := <-ended:
		if err == nil {
			t.Error("the event watch ended without an error when the engine broke its stream")
		}
	case <-time.After(20 * time.Second):
		t.Error("the event watch did not end within 20s of the engine breaking its stream")
	}

	p.Heal()
	deadline := time.Now().Add(20 * time.Second)
	for o = d.Observe(ctx, nil); !o.Engine.Reachable && time.Now().Before(deadline); o = d.Observe(ctx, nil) {
		time.Sleep(100 * time.Millisecond)
	}
	if !o.Engine.Reachable || o.Engine.Error != "" {
		t.Errorf("healed engine observed as %+v, want reachable", o.Engine)
	}
}
