package docker

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/internal/spec"
	"github.com/tentacle-deploy/tentacle/internal/testimage"
)

// Real-engine tests of the start-first strategy, the health gate's failure
// kinds and cancellation; see engine_test.go for the fixture.

// get answers whether the container's published port 8080 serves "ok".
func (f *fixture) serves(id string) error {
	c, err := f.api.ContainerInspect(context.Background(), id)
	if err != nil {
		return err
	}
	b := c.NetworkSettings.Ports["8080/tcp"]
	if len(b) == 0 {
		return fmt.Errorf("container %s publishes no 8080/tcp", id)
	}
	resp, err := http.Get("http://127.0.0.1:" + b[0].HostPort + "/")
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok" {
		return fmt.Errorf("GET = %d %q, want 200 ok", resp.StatusCode, body)
	}
	return nil
}

func startFirst(t Task) Task {
	t.Spec.Strategy = spec.StrategyStartFirst
	t.Spec.Ports = []spec.Port{{ContainerPort: 8080, HostIP: "127.0.0.1"}}
	return t
}

func TestStartFirstKeepsTheOldServingThroughTheGate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	digest := f.push("1.0", testimage.WithHealthcheck(200*time.Millisecond, 2))
	first, err, _ := f.run(context.Background(), startFirst(f.task("1.0", digest, env("TESTAPP_LISTEN", ":8080"), env("TESTAPP_MESSAGE", "v1"))))
	if err != nil {
		t.Fatalf("first Deploy: %v", err)
	}
	var during []string
	task := startFirst(f.task("1.0", digest, env("TESTAPP_LISTEN", ":8080"), env("TESTAPP_MESSAGE", "v2")))
	task.ID = "task-second"
	task.Spec.RestartPolicy, task.Spec.RestartMaxRetries = "on-failure", 3
	progress := func(p Progress) {
		if p.Phase != PhaseVerifying || during != nil {
			return
		}
		// The gate is about to be held: the old container still serves
		// under the app's name and the new one runs beside it.
		during = []string{}
		old, next := f.inspect(f.app), f.inspect(f.app+suffixNext)
		switch {
		case old == nil || old.ID != first.ContainerID || !old.State.Running:
			during = append(during, fmt.Sprintf("%s is not the old running container: %+v", f.app, old))
		case next == nil || !next.State.Running:
			during = append(during, fmt.Sprintf("%s is not running beside the old one: %+v", f.app+suffixNext, next))
		}
		if err := f.serves(first.ContainerID); err != nil {
			during = append(during, "the old container stopped serving during the gate: "+err.Error())
		}
	}
	logs := &syncBuffer{}
	second, err := f.d.Deploy(context.Background(), task, progress, logs)
	if err != nil {
		t.Fatalf("second Deploy: %v", err)
	}
	if during == nil {
		t.Fatal("no verifying progress was reported")
	}
	for _, d := range during {
		t.Error(d)
	}
	c := f.inspect(f.app)
	if c == nil || c.ID != second.ContainerID || !c.State.Running {
		t.Fatalf("after the swap %s = %+v, want the new container %s running", f.app, c, second.ContainerID)
	}
	if err := f.serves(second.ContainerID); err != nil {
		t.Errorf("new container: %v", err)
	}
	if p := c.HostConfig.RestartPolicy; p.Name != "on-failure" || p.MaximumRetryCount != 3 {
		t.Errorf("new container's restart policy = %+v, want on-failure with 3 retries", p)
	}
	if _, err := f.api.ContainerInspect(context.Background(), first.ContainerID); err == nil {
		t.Errorf("old container %s still exists after the swap", first.ContainerID)
	}
	if !strings.Contains(logs.String(), "line 1 v2\n") {
		t.Errorf("logs lack the new container's output:\n%s", logs)
	}
	f.assertNoLeftovers()
}

// A new container that fails its gate under start-first is removed and the
// old one is never touched: same container, never restarted, still serving.
func TestStartFirstFailureLeavesTheOldUntouched(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	digest := f.push("1.0", testimage.WithHealthcheck(200*time.Millisecond, 2))
	// Without a HEALTHCHECK, so that the exit is the only verdict.
	plain := f.push("plain")
	first, err, _ := f.run(context.Background(), startFirst(f.task("1.0", digest, env("TESTAPP_LISTEN", ":8080"))))
	if err != nil {
		t.Fatalf("first Deploy: %v", err)
	}
	oldStarted := f.inspect(f.app).State.StartedAt

	tests := []struct {
		name, tag, digest string
		env               []spec.EnvVar
		kind              FailureKind
		message           string
	}{
		{"exits 1", "plain", plain, []spec.EnvVar{env("TESTAPP_EXIT", "1"), env("TESTAPP_LINES", "25"), env("TESTAPP_MESSAGE", "bad")}, FailureContainerExited,
			"container " + f.app + ".next exited with code 1 within its 1m0s ready period\nlast 20 lines of output of container " + f.app + ".next:\nline 6 bad\n"},
		{"unhealthy", "1.0", digest, []spec.EnvVar{env("TESTAPP_HEALTH_EXIT", "1"), env("TESTAPP_LINES", "2"), env("TESTAPP_MESSAGE", "sick")}, FailureUnhealthy,
			"container " + f.app + ".next became unhealthy: last check exited with 1"},
	}
	for _, tt := range tests {
		task := startFirst(f.task(tt.tag, tt.digest, append([]spec.EnvVar{env("TESTAPP_LISTEN", ":8080")}, tt.env...)...))
		task.Spec.ReadyAfter = time.Minute // an exit ends the gate at once
		_, err, _ := f.run(context.Background(), task)
		if KindOf(err) != tt.kind || !strings.HasPrefix(err.Error(), tt.message) {
			t.Errorf("%s: Deploy error =\n%v\n(kind %q), want kind %s starting with\n%s", tt.name, err, KindOf(err), tt.kind, tt.message)
		}
		c := f.inspect(f.app)
		if c == nil || c.ID != first.ContainerID || !c.State.Running || c.State.StartedAt != oldStarted {
			t.Fatalf("%s: %s = %+v, want the old container %s, running since %s", tt.name, f.app, c, first.ContainerID, oldStarted)
		}
		if err := f.serves(first.ContainerID); err != nil {
			t.Errorf("%s: old container: %v", tt.name, err)
		}
		f.assertNoLeftovers()
	}
	// The unhealthy container printed two lines; the message ends with them.
	task := startFirst(f.task("1.0", digest, env("TESTAPP_LISTEN", ":8080"), env("TESTAPP_HEALTH_EXIT", "1"), env("TESTAPP_LINES", "2"), env("TESTAPP_MESSAGE", "sick")))
	_, err, _ = f.run(context.Background(), task)
	if want := "\nlast 2 lines of output of container " + f.app + ".next:\nline 1 sick\nline 2 sick"; err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("unhealthy error =\n%v\nwant it to end with%s", err, want)
	}
}

func TestHealthTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	d1 := f.push("1.0")
	// The first check runs after an hour: the verdict never comes in time.
	d2 := f.push("2.0", testimage.WithHealthcheck(time.Hour, 1))
	first, err, _ := f.run(context.Background(), f.task("1.0", d1))
	if err != nil {
		t.Fatalf("first Deploy: %v", err)
	}
	task := f.task("2.0", d2, env("TESTAPP_LINES", "1"), env("TESTAPP_MESSAGE", "slow"))
	task.Spec.HealthTimeout = 3 * time.Second
	_, err, rec := f.run(context.Background(), task)
	want := fmt.Sprintf("container %s did not report healthy within 3s: its health check is still starting; raise health_timeout if it needs longer\nlast line of output of container %s:\nline 1 slow", f.app, f.app)
	if KindOf(err) != FailureHealthTimeout || err.Error() != want {
		t.Errorf("Deploy error =\n%v\n(kind %q), want kind health_timeout:\n%s", err, KindOf(err), want)
	}
	if !strings.Contains(strings.Join(rec.msgs, "\n"), "waiting up to 3s for "+f.app+" to report healthy") {
		t.Errorf("progress %q does not announce the 3s limit", rec.msgs)
	}
	if c := f.inspect(f.app); c == nil || c.ID != first.ContainerID || !c.State.Running {
		t.Errorf("old container not restored: %+v", c)
	}
	f.assertNoLeftovers()
}

// Cancelling a Deploy while the image is still downloading (the registry
// holds the blobs back) leaves the old container running and nothing new.
func TestCancelDuringPull(t *testing.T) {
	t.Parallel()
	for _, strategy := range []string{spec.StrategyRecreate, spec.StrategyStartFirst} {
		t.Run(strategy, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			d1 := f.push("1.0")
			d2 := f.push("2.0")
			first, err, _ := f.run(context.Background(), f.task("1.0", d1))
			if err != nil {
				t.Fatalf("first Deploy: %v", err)
			}
			stalled, release := f.reg.StallBlobs(t)
			defer release()

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				<-stalled
				cancel()
			}()
			task := f.task("2.0", d2)
			task.Spec.Strategy = strategy
			_, err, _ = f.run(ctx, task)
			f.assertCancelRestored(err, first.ContainerID)
		})
	}
}

// Cancelling during the health gate restores the old container under both
// strategies.
func TestCancelDuringGate(t *testing.T) {
	t.Parallel()
	for _, strategy := range []string{spec.StrategyRecreate, spec.StrategyStartFirst} {
		t.Run(strategy, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			digest := f.push("1.0")
			first, err, _ := f.run(context.Background(), f.task("1.0", digest))
			if err != nil {
				t.Fatalf("first Deploy: %v", err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			task := f.task("1.0", digest)
			task.ID, task.Spec.Strategy, task.Spec.ReadyAfter = "task-cancelled", strategy, time.Minute
			progress := func(p Progress) {
				if p.Phase == PhaseVerifying {
					cancel()
				}
			}
			_, err = f.d.Deploy(ctx, task, progress, io.Discard)
			f.assertCancelRestored(err, first.ContainerID)
		})
	}
}

// Two agents with different container prefixes share one engine: each
// deploys the same application as its own container and leaves the
// other's alone.
func TestContainerPrefix(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	digest := f.push("1.0")
	ids := map[string]string{}
	for _, prefix := range []string{"agent-a.", "agent-b-"} {
		d := New(f.api, f.creds, nil)
		d.SetContainerPrefix(prefix)
		res, err := d.Deploy(context.Background(), f.task("1.0", digest), nil, nil)
		if err != nil {
			t.Fatalf("Deploy with prefix %q: %v", prefix, err)
		}
		ids[prefix] = res.ContainerID
	}
	for prefix, id := range ids {
		c := f.inspect(prefix + f.app)
		if c == nil || c.ID != id || !c.State.Running {
			t.Errorf("container %s = %+v, want %s running", prefix+f.app, c, id)
		}
	}
	if c := f.inspect(f.app); c != nil {
		t.Errorf("a container without prefix was created: %s", c.ID)
	}
	// A second deployment through one prefix replaces only its container.
	d := New(f.api, f.creds, nil)
	d.SetContainerPrefix("agent-a.")
	res, err := d.Deploy(context.Background(), f.task("1.0", digest), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := f.inspect("agent-b-" + f.app); c == nil || c.ID != ids["agent-b-"] || !c.State.Running {
		t.Errorf("the other agent's container was touched: %+v", c)
	}
	if c := f.inspect("agent-a." + f.app); c == nil || c.ID != res.ContainerID {
		t.Errorf("agent-a's container was not replaced: %+v", c)
	}
	for _, n := range []string{"agent-a." + f.app + suffixNext, "agent-a." + f.app + suffixPrevious} {
		if c := f.inspect(n); c != nil {
			t.Errorf("container %s left behind", n)
		}
	}
}
