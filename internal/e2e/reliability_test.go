package e2e

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// connectedTargets counts the targets with a live session.
func (c *cluster) connectedTargets() int {
	c.t.Helper()
	resp, err := c.admin.ListTargets(c.ctx(), &tentaclev1.ListTargetsRequest{})
	if err != nil {
		c.t.Fatal(err)
	}
	n := 0
	for _, tg := range resp.GetTargets() {
		if tg.GetConnected() {
			n++
		}
	}
	return n
}

func (c *cluster) waitConnected(n int, within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for c.connectedTargets() != n {
		if time.Now().After(deadline) {
			c.t.Fatalf("%d of %d targets connected after %s", c.connectedTargets(), n, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServerStopIsBoundedAndAgentsReturn: a server with live agents stops
// within its bound (it asks them to reconnect rather than wait on their
// streams), and after its restart every agent is back and deploys.
func TestServerStopIsBoundedAndAgentsReturn(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	c := startCluster(t, dataDir, "")
	c.setupApp("test", "web")
	runners := map[string]*fakeRunner{}
	for i := range 3 {
		dir := t.TempDir()
		c.enroll("test", dir)
		r := newFakeRunner()
		runners[fmt.Sprint(i)] = r
		runAgent(t, dir, r)
	}
	c.waitConnected(3, 30*time.Second)

	stopped := make(chan struct{})
	go func() { c.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatal("server with live agents still stopping after 20s (its bound is 5s)")
	}

	c2 := startCluster(t, dataDir, c.addr)
	c2.waitConnected(3, 60*time.Second)
	final := c2.wait(c2.deploy("test", "web", "1.0"))
	if s := final.GetDeployment().GetState(); s != tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED {
		t.Fatalf("deployment after the restart = %v", final)
	}
	for _, task := range final.GetTasks() {
		runs := 0
		for _, r := range runners {
			runs += r.callCount(task.GetId())
		}
		if runs != 1 {
			t.Errorf("task on %s ran %d times, want 1", task.GetTargetName(), runs)
		}
	}
}

// TestDeadlineFailsTaskOfOfflineTarget: a target offline past the
// deployment's deadline gets its task failed as target-unavailable, with
// the deadline in the message; when its agent comes back it never runs it.
func TestDeadlineFailsTaskOfOfflineTarget(t *testing.T) {
	t.Parallel()
	c := startCluster(t, t.TempDir(), "")
	c.setupApp("test", "web")
	agentDir := t.TempDir()
	c.enroll("test", agentDir)
	resp, err := c.admin.CreateDeployment(c.ctx(), &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.0",
		Environment: "test", Deadline: durationpb.New(2 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	final := c.wait(resp.GetDeployment().GetId())
	if s := final.GetDeployment().GetState(); s != tentaclev1.DeploymentState_DEPLOYMENT_STATE_FAILED {
		t.Fatalf("deployment to an offline target past its deadline = %v, want failed", s)
	}
	task := final.GetTasks()[0]
	deadline := final.GetDeployment().GetDeadlineAt().AsTime().UTC().Format(time.RFC3339)
	want := fmt.Sprintf("target %s had no session before the deployment's deadline (%s)", task.GetTargetName(), deadline)
	if task.GetFailureKind() != tentaclev1.FailureKind_FAILURE_KIND_TARGET_UNAVAILABLE || task.GetMessage() != want {
		t.Fatalf("task = %v %q\nwant target unavailable, %q", task.GetFailureKind(), task.GetMessage(), want)
	}

	// The agent returns: it gets the next deployment, never the failed one.
	r := newFakeRunner()
	runAgent(t, agentDir, r)
	c.must(c.admin.CreateRelease(c.ctx(), &tentaclev1.CreateReleaseRequest{Application: "web", ImageTag: "2.0"}))
	if s := c.wait(c.deploy("test", "web", "2.0")).GetDeployment().GetState(); s != tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED {
		t.Fatalf("next deployment = %v", s)
	}
	if n := r.callCount(task.GetId()); n != 0 {
		t.Fatalf("the failed task ran %d times after its target came back, want 0", n)
	}
}
