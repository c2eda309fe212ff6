package e2e

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tentacle-deploy/tentacle/agent"
	"github.com/tentacle-deploy/tentacle/agent/docker"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
	"github.com/tentacle-deploy/tentacle/server"
)

// Rolling deployments, cancel, rollback, deploy --missing, auto-deploy and
// required targets, with the real server and real agent sessions; each
// agent has its own fake runner, and the runners of a fleet share one
// record of what started and ended, in order.

// fleetRecord is the order in which the fleet's tasks started and ended.
type fleetRecord struct {
	mu     sync.Mutex
	events []fleetEvent
	wake   chan struct{} // closed and replaced on every event
}

type fleetEvent struct {
	target string
	what   string // "start", "end", "cancelled"
	at     time.Time
}

func (e fleetEvent) String() string { return e.target + " " + e.what }

func newFleetRecord() *fleetRecord { return &fleetRecord{wake: make(chan struct{})} }

func (r *fleetRecord) add(target, what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fleetEvent{target: target, what: what, at: time.Now()})
	close(r.wake)
	r.wake = make(chan struct{})
}

func (r *fleetRecord) snapshot() []fleetEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// waitFor waits until target has recorded what.
func (r *fleetRecord) waitFor(t *testing.T, target, what string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		r.mu.Lock()
		found := slices.ContainsFunc(r.events, func(e fleetEvent) bool { return e.target == target && e.what == what })
		wake := r.wake
		r.mu.Unlock()
		if found {
			return
		}
		select {
		case <-wake:
		case <-deadline:
			t.Fatalf("timed out waiting for %s to %s; recorded %v", target, what, r.snapshot())
		}
	}
}

// index is the position of target's first what, or -1.
func (r *fleetRecord) index(target, what string) int {
	return slices.IndexFunc(r.snapshot(), func(e fleetEvent) bool { return e.target == target && e.what == what })
}

func (r *fleetRecord) count(target, what string) int {
	n := 0
	for _, e := range r.snapshot() {
		if e.target == target && e.what == what {
			n++
		}
	}
	return n
}

func (r *fleetRecord) at(target, what string) time.Time {
	for _, e := range r.snapshot() {
		if e.target == target && e.what == what {
			return e.at
		}
	}
	return time.Time{}
}

// targetRunner is one agent's fake Docker seam.
type targetRunner struct {
	name string
	rec  *fleetRecord
	// fail makes the task fail; gate, when set, holds the task until it is
	// closed or the task is cancelled.
	fail bool
	gate chan struct{}
}

func (r *targetRunner) Deploy(ctx context.Context, t docker.Task, progress func(docker.Progress), logs io.Writer) (docker.Result, error) {
	r.rec.add(r.name, "start")
	progress(docker.Progress{Phase: docker.PhasePulling, Message: "pulling " + t.Repository + ":" + t.Tag})
	if r.gate != nil {
		select {
		case <-r.gate:
		case <-ctx.Done():
			r.rec.add(r.name, "cancelled")
			return docker.Result{}, ctx.Err()
		}
	}
	r.rec.add(r.name, "end")
	if r.fail {
		return docker.Result{}, errors.New("container exited with code 1")
	}
	return docker.Result{Digest: fakeDigest, ContainerID: "c-" + t.ID}, nil
}

func (r *targetRunner) EngineVersion(context.Context) (string, error) { return "fake-engine", nil }

func (r *targetRunner) Reconcile(context.Context, docker.Task, func(docker.Progress), io.Writer) (docker.Result, error) {
	return docker.Result{}, docker.ErrNotCreated
}

// fleetMember is an enrolled agent, not yet running.
type fleetMember struct {
	name   string
	dir    string
	runner *targetRunner
}

// enrollFleet enrolls n agents into env; they are returned in target name
// order, the order deployments take them in.
func (c *cluster) enrollFleet(env string, n int, rec *fleetRecord, roles ...string) []*fleetMember {
	c.t.Helper()
	var ms []*fleetMember
	for range n {
		ms = append(ms, c.enrollMember(env, rec, roles...))
	}
	slices.SortFunc(ms, func(a, b *fleetMember) int { return strings.Compare(a.name, b.name) })
	return ms
}

func (c *cluster) enrollMember(env string, rec *fleetRecord, roles ...string) *fleetMember {
	c.t.Helper()
	resp, err := c.admin.CreateJoinToken(c.ctx(), &tentaclev1.CreateJoinTokenRequest{Environment: env, Roles: roles, Ttl: durationpb.New(time.Minute)})
	if err != nil {
		c.t.Fatal(err)
	}
	dir := c.t.TempDir()
	id, err := agent.Enroll(c.ctx(), agent.EnrollOptions{Server: c.addr, Token: resp.GetToken(), DataDir: dir})
	if err != nil {
		c.t.Fatal(err)
	}
	return &fleetMember{name: id.TargetName, dir: dir, runner: &targetRunner{name: id.TargetName, rec: rec}}
}

func (m *fleetMember) run(t *testing.T) (stop func()) { return runAgent(t, m.dir, m.runner) }

// startFleet starts a server with environment prod, application web (with
// rollout) and its release 1.0, and enrolls n agents into prod, not yet
// running.
func startFleet(t *testing.T, dataDir string, n int, rollout *tentaclev1.Rollout) (*cluster, *fleetRecord, []*fleetMember) {
	c := startCluster(t, dataDir, "")
	c.must(c.admin.CreateEnvironment(c.ctx(), &tentaclev1.CreateEnvironmentRequest{Name: "prod"}))
	c.createApp("web", rollout)
	c.release("web", "1.0")
	rec := newFleetRecord()
	return c, rec, c.enrollFleet("prod", n, rec)
}

func runFleet(t *testing.T, fleet []*fleetMember) {
	for _, m := range fleet {
		m.run(t)
	}
}

// audited reports whether the audit log holds the record.
func (c *cluster) audited(actor, action, object, outcome string) bool {
	c.t.Helper()
	recs, err := c.admin.ListAuditRecords(c.ctx(), &tentaclev1.ListAuditRecordsRequest{})
	if err != nil {
		c.t.Fatal(err)
	}
	return slices.ContainsFunc(recs.GetRecords(), func(r *tentaclev1.AuditRecord) bool {
		return r.GetActor() == actor && r.GetAction() == action && r.GetObject() == object && r.GetOutcome() == outcome
	})
}

func (c *cluster) createApp(app string, rollout *tentaclev1.Rollout) {
	c.t.Helper()
	c.must(c.admin.CreateApplication(c.ctx(), &tentaclev1.CreateApplicationRequest{Name: app, ImageRepository: "127.0.0.1:5000/team/" + app,
		RunSpec: &tentaclev1.RunSpec{Env: []*tentaclev1.EnvVar{{Name: "GREETING", Value: "hello"}}}, Rollout: rollout}))
}

func (c *cluster) release(app, version string) {
	c.t.Helper()
	c.must(c.admin.CreateRelease(c.ctx(), &tentaclev1.CreateReleaseRequest{Application: app, ImageTag: version}))
}

func (c *cluster) deployWith(req *tentaclev1.CreateDeploymentRequest) *tentaclev1.CreateDeploymentResponse {
	c.t.Helper()
	resp, err := c.admin.CreateDeployment(c.ctx(), req)
	if err != nil {
		c.t.Fatalf("deploy %v: %v", req, err)
	}
	return resp
}

// byTarget maps the final view's tasks by target name.
func byTarget(w *tentaclev1.WatchDeploymentResponse) map[string]*tentaclev1.Task {
	out := map[string]*tentaclev1.Task{}
	for _, t := range w.GetTasks() {
		out[t.GetTargetName()] = t
	}
	return out
}

// wantFinished checks the deployment's final state and each task's state.
func wantFinished(t *testing.T, final *tentaclev1.WatchDeploymentResponse, state tentaclev1.DeploymentState, tasks map[string]tentaclev1.TaskState) {
	t.Helper()
	if s := final.GetDeployment().GetState(); s != state {
		t.Errorf("deployment %v, want %v", s, state)
	}
	got := byTarget(final)
	for name, want := range tasks {
		if s := got[name].GetState(); s != want {
			t.Errorf("task on %s: %v (%q), want %v", name, s, got[name].GetMessage(), want)
		}
	}
}

func wantCode(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code || st.Message() != msg {
		t.Errorf("got %v %q\nwant %v %q", st.Code(), st.Message(), code, msg)
	}
}

// wantWaveOrder checks that no task of a later wave started before every
// task of the waves before it ended.
func wantWaveOrder(t *testing.T, rec *fleetRecord, waves ...[]*fleetMember) {
	t.Helper()
	for i := 1; i < len(waves); i++ {
		for _, later := range waves[i] {
			start := rec.index(later.name, "start")
			if start < 0 {
				continue
			}
			for _, earlier := range waves[i-1] {
				if end := rec.index(earlier.name, "end"); end < 0 || end > start {
					t.Errorf("%s (wave %d) started before %s (wave %d) ended: %v", later.name, i+1, earlier.name, i, rec.snapshot())
				}
			}
		}
	}
}

func TestRollingDeploymentHaltsOnFailure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		failing   int // index of the failing target, by name
		wantState map[int]tentaclev1.TaskState
	}{
		// A failure in wave 1: wave 1 finishes, wave 2 never starts.
		{"in wave 1", 1, map[int]tentaclev1.TaskState{
			0: tentaclev1.TaskState_TASK_STATE_SUCCEEDED, 1: tentaclev1.TaskState_TASK_STATE_FAILED,
			2: tentaclev1.TaskState_TASK_STATE_CANCELLED, 3: tentaclev1.TaskState_TASK_STATE_CANCELLED,
		}},
		// A failure in wave 2: wave 1 succeeded, the running wave finishes.
		{"in wave 2", 3, map[int]tentaclev1.TaskState{
			0: tentaclev1.TaskState_TASK_STATE_SUCCEEDED, 1: tentaclev1.TaskState_TASK_STATE_SUCCEEDED,
			2: tentaclev1.TaskState_TASK_STATE_SUCCEEDED, 3: tentaclev1.TaskState_TASK_STATE_FAILED,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, rec, fleet := startFleet(t, t.TempDir(), 4, &tentaclev1.Rollout{Window: 2, FailurePolicy: "halt"})
			failing := fleet[tc.failing]
			failing.runner.fail = true
			// The failing task waits until its wave's other task has
			// started, so the halt cannot overtake that task's dispatch.
			failing.runner.gate = make(chan struct{})
			runFleet(t, fleet)
			id := c.deploy("prod", "web", "1.0")
			partner := fleet[tc.failing^1]
			rec.waitFor(t, partner.name, "start")
			close(failing.runner.gate)

			final := c.wait(id)
			want := map[string]tentaclev1.TaskState{}
			for i, s := range tc.wantState {
				want[fleet[i].name] = s
			}
			wantFinished(t, final, tentaclev1.DeploymentState_DEPLOYMENT_STATE_FAILED, want)
			tasks := byTarget(final)
			for i, s := range tc.wantState {
				task := tasks[fleet[i].name]
				if s != tentaclev1.TaskState_TASK_STATE_CANCELLED {
					continue
				}
				wantMsg := "halted: task on " + failing.name + " failed"
				if task.GetFailureKind() != tentaclev1.FailureKind_FAILURE_KIND_HALTED || task.GetMessage() != wantMsg {
					t.Errorf("halted task on %s: kind %v, message %q; want halted, %q", fleet[i].name, task.GetFailureKind(), task.GetMessage(), wantMsg)
				}
				if rec.index(fleet[i].name, "start") >= 0 {
					t.Errorf("halted task on %s ran", fleet[i].name)
				}
			}
			wantWaveOrder(t, rec, fleet[:2], fleet[2:])
			if w := tasks[fleet[3].name].GetWave(); w != 2 || tasks[fleet[0].name].GetWave() != 1 {
				t.Errorf("waves: %s in %d, %s in %d; want 1 and 2", fleet[0].name, tasks[fleet[0].name].GetWave(), fleet[3].name, w)
			}
		})
	}
}

func TestRollingDeploymentContinuesPastFailure(t *testing.T) {
	t.Parallel()
	c, rec, fleet := startFleet(t, t.TempDir(), 4, nil)
	fleet[0].runner.fail = true
	runFleet(t, fleet)
	// The request's rollout overrides the application's (one wave, halt).
	resp := c.deployWith(&tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.0", Environment: "prod",
		Rollout: &tentaclev1.Rollout{Window: 2, FailurePolicy: "continue"}})
	if r := resp.GetDeployment().GetRollout(); r.GetWindow() != 2 || r.GetFailurePolicy() != "continue" {
		t.Errorf("deployment rollout = %v, want window 2, continue", r)
	}
	final := c.wait(resp.GetDeployment().GetId())
	wantFinished(t, final, tentaclev1.DeploymentState_DEPLOYMENT_STATE_FAILED, map[string]tentaclev1.TaskState{
		fleet[0].name: tentaclev1.TaskState_TASK_STATE_FAILED, fleet[1].name: tentaclev1.TaskState_TASK_STATE_SUCCEEDED,
		fleet[2].name: tentaclev1.TaskState_TASK_STATE_SUCCEEDED, fleet[3].name: tentaclev1.TaskState_TASK_STATE_SUCCEEDED,
	})
	wantWaveOrder(t, rec, fleet[:2], fleet[2:])
}

func TestRollingDeploymentPausesBetweenWaves(t *testing.T) {
	t.Parallel()
	const pause = 1500 * time.Millisecond
	c, rec, fleet := startFleet(t, t.TempDir(), 4, &tentaclev1.Rollout{Window: 2, Pause: durationpb.New(pause)})
	runFleet(t, fleet)
	final := c.wait(c.deploy("prod", "web", "1.0"))
	wantFinished(t, final, tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED, nil)
	wantWaveOrder(t, rec, fleet[:2], fleet[2:])
	wavePaused(t, rec, fleet[:2], fleet[2:], pause)
}

// wavePaused checks that the later wave started at least pause after the
// earlier one's last task ended.
func wavePaused(t *testing.T, rec *fleetRecord, earlier, later []*fleetMember, pause time.Duration) {
	t.Helper()
	var lastEnd time.Time
	for _, m := range earlier {
		if e := rec.at(m.name, "end"); e.After(lastEnd) {
			lastEnd = e
		}
	}
	for _, m := range later {
		if gap := rec.at(m.name, "start").Sub(lastEnd); gap < pause {
			t.Errorf("%s started %s after the wave before it ended, want at least the pause %s", m.name, gap, pause)
		}
	}
}

func TestCancelRollingDeployment(t *testing.T) {
	t.Parallel()
	c, rec, fleet := startFleet(t, t.TempDir(), 3, &tentaclev1.Rollout{Window: 1})
	fleet[0].runner.gate = make(chan struct{}) // never opened: blocked until cancelled
	runFleet(t, fleet)
	id := c.deploy("prod", "web", "1.0")
	rec.waitFor(t, fleet[0].name, "start")

	resp, err := c.admin.CancelDeployment(c.ctx(), &tentaclev1.CancelDeploymentRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetDeployment().GetCancelRequestedAt() == nil {
		t.Errorf("cancel response %v has no cancel_requested_at", resp.GetDeployment())
	}
	rec.waitFor(t, fleet[0].name, "cancelled") // the agent got Cancel and stopped the task
	final := c.wait(id)
	wantFinished(t, final, tentaclev1.DeploymentState_DEPLOYMENT_STATE_CANCELLED, map[string]tentaclev1.TaskState{
		fleet[0].name: tentaclev1.TaskState_TASK_STATE_CANCELLED, fleet[1].name: tentaclev1.TaskState_TASK_STATE_CANCELLED,
		fleet[2].name: tentaclev1.TaskState_TASK_STATE_CANCELLED,
	})
	for _, m := range fleet[1:] {
		if task := byTarget(final)[m.name]; task.GetFailureKind() != tentaclev1.FailureKind_FAILURE_KIND_HALTED || rec.index(m.name, "start") >= 0 {
			t.Errorf("waiting task on %s: %v, started at %d; want halted, never started", m.name, task, rec.index(m.name, "start"))
		}
	}
	if final.GetDeployment().GetCancelRequestedAt() == nil || final.GetDeployment().GetFinishedAt() == nil {
		t.Errorf("cancelled deployment %v lacks cancel_requested_at or finished_at", final.GetDeployment())
	}

	_, err = c.admin.CancelDeployment(c.ctx(), &tentaclev1.CancelDeploymentRequest{Id: id})
	wantCode(t, err, codes.FailedPrecondition, "deployment "+id+" has already finished (cancelled): there is nothing to cancel")
	for _, outcome := range []string{"ok", "failed: deployment " + id + " has already finished (cancelled): there is nothing to cancel"} {
		if !c.audited("admin-token:bootstrap", "CancelDeployment", "deployment/"+id, outcome) {
			t.Errorf("no audit record of CancelDeployment with outcome %q", outcome)
		}
	}
}

// TestCancelWhileAgentOffline: a task queued for an agent that is away is
// cancelled at once and never sent when the agent returns.
func TestCancelWhileAgentOffline(t *testing.T) {
	t.Parallel()
	c := startCluster(t, t.TempDir(), "")
	c.must(c.admin.CreateEnvironment(c.ctx(), &tentaclev1.CreateEnvironmentRequest{Name: "prod"}))
	c.createApp("web", nil)
	c.release("web", "1.0")
	rec := newFleetRecord()
	m := c.enrollFleet("prod", 1, rec)[0]
	id := c.deploy("prod", "web", "1.0") // queued: the agent is not running
	c.must(c.admin.CancelDeployment(c.ctx(), &tentaclev1.CancelDeploymentRequest{Id: id}))
	final := c.wait(id)
	wantFinished(t, final, tentaclev1.DeploymentState_DEPLOYMENT_STATE_CANCELLED, map[string]tentaclev1.TaskState{
		m.name: tentaclev1.TaskState_TASK_STATE_CANCELLED,
	})
	m.run(t)
	// A later deployment reaches the agent, and the cancelled one never ran.
	c.release("web", "2.0")
	wantFinished(t, c.wait(c.deploy("prod", "web", "2.0")), tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED, nil)
	if n := rec.count(m.name, "start"); n != 1 {
		t.Errorf("agent ran %d tasks, want only the later deployment's", n)
	}
}

func TestRollingDeploymentResumesAfterServerRestart(t *testing.T) {
	t.Parallel()
	const pause = 3 * time.Second
	dataDir := t.TempDir()
	c, rec, fleet := startFleet(t, dataDir, 4, &tentaclev1.Rollout{Window: 2, Pause: durationpb.New(pause)})
	runFleet(t, fleet)
	id := c.deploy("prod", "web", "1.0")
	// Stop the server in the pause after wave 1.
	waitFor(t, "wave 1 to succeed", 30*time.Second, func() bool {
		got, err := c.admin.GetDeployment(c.ctx(), &tentaclev1.GetDeploymentRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		tasks := byTarget(&tentaclev1.WatchDeploymentResponse{Tasks: got.GetTasks()})
		return tasks[fleet[0].name].GetState() == tentaclev1.TaskState_TASK_STATE_SUCCEEDED &&
			tasks[fleet[1].name].GetState() == tentaclev1.TaskState_TASK_STATE_SUCCEEDED
	})
	c.stop()
	if rec.index(fleet[2].name, "start") >= 0 {
		t.Fatalf("wave 2 started before the server stopped (the pause is %s): %v", pause, rec.snapshot())
	}

	c2 := startCluster(t, dataDir, c.addr)
	final := c2.wait(id)
	wantFinished(t, final, tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED, map[string]tentaclev1.TaskState{
		fleet[2].name: tentaclev1.TaskState_TASK_STATE_SUCCEEDED, fleet[3].name: tentaclev1.TaskState_TASK_STATE_SUCCEEDED,
	})
	wantWaveOrder(t, rec, fleet[:2], fleet[2:])
	wavePaused(t, rec, fleet[:2], fleet[2:], pause)
}

// deployerClient is an admin client with a deployer token.
func (c *cluster) deployerClient() tentaclev1.AdminServiceClient {
	c.t.Helper()
	tok, err := c.srv.CreateAdminToken(c.ctx(), "ci", server.RoleDeployer, 0)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.adminClient(tok)
}

func TestRollbackRedeploysThePreviousRelease(t *testing.T) {
	t.Parallel()
	c := startCluster(t, t.TempDir(), "")
	for _, env := range []string{"dev", "prod"} {
		c.must(c.admin.CreateEnvironment(c.ctx(), &tentaclev1.CreateEnvironmentRequest{Name: env}))
	}
	c.createApp("web", nil)
	rec := newFleetRecord()
	for _, env := range []string{"dev", "prod"} {
		c.enrollFleet(env, 1, rec)[0].run(t)
	}
	deployer := c.deployerClient()
	rollback := func() (*tentaclev1.RollbackResponse, error) {
		return deployer.Rollback(c.ctx(), &tentaclev1.RollbackRequest{Application: "web", Environment: "prod"})
	}
	_, err := rollback()
	wantCode(t, err, codes.FailedPrecondition, "nothing to roll back to: web has no succeeded deployment in prod")

	// 1.0 went to prod by an admin's --force, never through dev.
	c.release("web", "1.0")
	c.wait(c.deployWith(&tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.0", Environment: "prod", Force: true}).GetDeployment().GetId())
	_, err = rollback()
	wantCode(t, err, codes.FailedPrecondition, "nothing to roll back to: web 1.0 is the only release that succeeded in prod")
	c.release("web", "2.0")
	c.wait(c.deploy("dev", "web", "2.0"))
	c.wait(c.deploy("prod", "web", "2.0"))
	// 3.0 in dev changes nothing in prod.
	c.release("web", "3.0")
	c.wait(c.deploy("dev", "web", "3.0"))

	// The deployer rolls prod back to 1.0 without --force: it ran there.
	resp, err := rollback()
	if err != nil {
		t.Fatal(err)
	}
	d := resp.GetDeployment()
	if d.GetReleaseVersion() != "1.0" || d.GetKind() != "rollback" || resp.GetFromVersion() != "2.0" || d.GetCreatedBy() != "ci" {
		t.Fatalf("rollback deployment %v from %q; want 1.0, kind rollback, from 2.0, by ci", d, resp.GetFromVersion())
	}
	wantFinished(t, c.wait(d.GetId()), tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED, nil)
	// Now 1.0 is current again, and rolling back returns to 2.0.
	resp, err = rollback()
	if err != nil || resp.GetDeployment().GetReleaseVersion() != "2.0" || resp.GetFromVersion() != "1.0" {
		t.Fatalf("second rollback: %v, %v; want 2.0 from 1.0", resp, err)
	}
	c.wait(resp.GetDeployment().GetId())
	want := "deployment/" + d.GetId() + " (application/web→environment/prod, rollback from 2.0 to 1.0)"
	if !c.audited("admin-token:ci", "Rollback", want, "ok") {
		t.Errorf("no audit record %q", want)
	}
}

func TestDeployMissingOnlyReachesNewTargets(t *testing.T) {
	t.Parallel()
	c, rec, old := startFleet(t, t.TempDir(), 2, nil)
	for _, m := range old {
		m.run(t)
	}
	wantFinished(t, c.wait(c.deploy("prod", "web", "1.0")), tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED, nil)

	missing := &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.0", Environment: "prod", MissingOnly: true}
	_, err := c.admin.CreateDeployment(c.ctx(), missing)
	wantCode(t, err, codes.FailedPrecondition, "nothing to deploy: every target of prod already runs web 1.0")

	added := c.enrollMember("prod", rec)
	added.run(t)
	resp := c.deployWith(missing)
	if len(resp.GetTasks()) != 1 || resp.GetTasks()[0].GetTargetName() != added.name || resp.GetDeployment().GetKind() != "missing" {
		t.Fatalf("deploy --missing: %v; want one task, for %s, kind missing", resp, added.name)
	}
	wantFinished(t, c.wait(resp.GetDeployment().GetId()), tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED, nil)
	for _, m := range old {
		if n := rec.count(m.name, "start"); n != 1 {
			t.Errorf("%s ran %d tasks, want 1", m.name, n)
		}
	}
}

func TestAutoDeployOnEnrollment(t *testing.T) {
	t.Parallel()
	c := startCluster(t, t.TempDir(), "")
	c.must(c.admin.CreateEnvironment(c.ctx(), &tentaclev1.CreateEnvironmentRequest{Name: "prod"}))
	c.createApp("web", nil)
	c.must(c.admin.CreateApplication(c.ctx(), &tentaclev1.CreateApplicationRequest{Name: "db", ImageRepository: "127.0.0.1:5000/team/db", Roles: []string{"db"}}))
	c.release("web", "1.0")
	c.release("web", "1.1") // released, never deployed: not current
	rec := newFleetRecord()
	c.enrollFleet("prod", 1, rec)[0].run(t)
	c.wait(c.deploy("prod", "web", "1.0"))

	// Without auto-deploy a new target gets nothing.
	quiet := c.enrollMember("prod", rec)
	if ds, _ := c.admin.ListDeployments(c.ctx(), &tentaclev1.ListDeploymentsRequest{}); len(ds.GetDeployments()) != 1 {
		t.Fatalf("deployments after joining an environment without auto-deploy: %v", ds)
	}
	on := true
	env, err := c.admin.UpdateEnvironment(c.ctx(), &tentaclev1.UpdateEnvironmentRequest{Name: "prod", AutoDeploy: &on})
	if err != nil || !env.GetEnvironment().GetAutoDeploy() {
		t.Fatalf("update environment: %v, %v", env, err)
	}
	if !c.audited("admin-token:bootstrap", "UpdateEnvironment", "environment/prod", "ok") {
		t.Error("UpdateEnvironment not audited")
	}
	joined := c.enrollMember("prod", rec)
	ds, err := c.admin.ListDeployments(c.ctx(), &tentaclev1.ListDeploymentsRequest{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	d := ds.GetDeployments()[0]
	if d.GetKind() != "auto" || d.GetCreatedBy() != "auto-deploy" || d.GetReleaseVersion() != "1.0" || d.GetApplication() != "web" {
		t.Fatalf("deployment after a target joined: %v; want web 1.0, kind auto, by auto-deploy", d)
	}
	joined.run(t)
	final := c.wait(d.GetId())
	wantFinished(t, final, tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED, map[string]tentaclev1.TaskState{
		joined.name: tentaclev1.TaskState_TASK_STATE_SUCCEEDED,
	})
	if len(final.GetTasks()) != 1 {
		t.Errorf("auto deployment tasks: %v, want only %s's", final.GetTasks(), joined.name)
	}
	if rec.index(quiet.name, "start") >= 0 {
		t.Errorf("%s, which joined before auto-deploy was on, ran a task", quiet.name)
	}
	want := "deployment/" + d.GetId() + " (release/web@1.0→target/" + joined.name + " (environment/prod))"
	if !c.audited("auto-deploy", "CreateDeployment", want, "ok") {
		t.Errorf("no audit record %q", want)
	}
}

func TestRequiredTargetsPromotePartialRollout(t *testing.T) {
	t.Parallel()
	c := startCluster(t, t.TempDir(), "")
	for _, env := range []string{"dev", "prod"} {
		c.must(c.admin.CreateEnvironment(c.ctx(), &tentaclev1.CreateEnvironmentRequest{Name: env}))
	}
	// continue: under halt, the failing task could cancel the other one
	// before it was sent, and no target would run the release.
	c.createApp("web", &tentaclev1.Rollout{FailurePolicy: "continue"})
	c.release("web", "1.0")
	rec := newFleetRecord()
	dev := c.enrollFleet("dev", 2, rec)
	dev[1].runner.fail = true
	for _, m := range dev {
		m.run(t)
	}
	c.enrollFleet("prod", 1, rec)[0].run(t)
	wantFinished(t, c.wait(c.deploy("dev", "web", "1.0")), tentaclev1.DeploymentState_DEPLOYMENT_STATE_FAILED, nil)

	req := &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.0", Environment: "prod"}
	_, err := c.admin.CreateDeployment(c.ctx(), req)
	wantCode(t, err, codes.FailedPrecondition, `release "1.0" of "web" has not succeeded in "dev", the environment before "prod": deploy it there first, or pass --force (role admin)`)

	one := int32(1)
	c.must(c.admin.UpdateEnvironment(c.ctx(), &tentaclev1.UpdateEnvironmentRequest{Name: "dev", RequiredTargets: &one}))
	resp := c.deployWith(req)
	wantFinished(t, c.wait(resp.GetDeployment().GetId()), tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED, nil)
}

// TestRolloutSettingsRefused: each bad value names its field and what to
// use, and stores nothing.
func TestRolloutSettingsRefused(t *testing.T) {
	t.Parallel()
	c := startCluster(t, t.TempDir(), "")
	c.must(c.admin.CreateEnvironment(c.ctx(), &tentaclev1.CreateEnvironmentRequest{Name: "prod"}))
	for _, tc := range []struct {
		rollout *tentaclev1.Rollout
		want    string
	}{
		{&tentaclev1.Rollout{Window: -1}, "rollout.window: -1 is negative: use 0 (every target at once) or the number of targets per wave"},
		{&tentaclev1.Rollout{Pause: durationpb.New(25 * time.Hour)}, "rollout.pause: 25h0m0s out of range: use 0 to 24h"},
		{&tentaclev1.Rollout{Pause: durationpb.New(-time.Second)}, "rollout.pause: -1s out of range: use 0 to 24h"},
		{&tentaclev1.Rollout{FailurePolicy: "stop"}, `rollout.failure_policy: "stop" is not a policy: use "halt" or "continue"`},
	} {
		_, err := c.admin.CreateApplication(c.ctx(), &tentaclev1.CreateApplicationRequest{Name: "web", ImageRepository: "team/web", Rollout: tc.rollout})
		wantCode(t, err, codes.InvalidArgument, tc.want)
		_, err = c.admin.CreateDeployment(c.ctx(), &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1", Environment: "prod", Rollout: tc.rollout})
		wantCode(t, err, codes.InvalidArgument, tc.want)
	}
	if apps, _ := c.admin.ListApplications(c.ctx(), &tentaclev1.ListApplicationsRequest{}); len(apps.GetApplications()) != 0 {
		t.Errorf("refused applications were stored: %v", apps)
	}
	minus := int32(-2)
	_, err := c.admin.UpdateEnvironment(c.ctx(), &tentaclev1.UpdateEnvironmentRequest{Name: "prod", RequiredTargets: &minus})
	wantCode(t, err, codes.InvalidArgument, "required_targets: -2 is negative: use 0 (every target) or the number of targets that must succeed")
	_, err = c.admin.UpdateEnvironment(c.ctx(), &tentaclev1.UpdateEnvironmentRequest{Name: "prod"})
	wantCode(t, err, codes.InvalidArgument, "nothing to update: set description, auto_deploy or required_targets")
	_, err = c.admin.CreateEnvironment(c.ctx(), &tentaclev1.CreateEnvironmentRequest{Name: "stage", RequiredTargets: -1})
	wantCode(t, err, codes.InvalidArgument, "required_targets: -1 is negative: use 0 (every target) or the number of targets that must succeed")
	env, err := c.admin.ListEnvironments(c.ctx(), &tentaclev1.ListEnvironmentsRequest{})
	if err != nil || len(env.GetEnvironments()) != 1 || env.GetEnvironments()[0].GetRequiredTargets() != 0 {
		t.Errorf("environments after refused changes: %v, %v", env, err)
	}
	// A good rollout is stored and read back.
	app, err := c.admin.CreateApplication(c.ctx(), &tentaclev1.CreateApplicationRequest{Name: "web", ImageRepository: "team/web",
		Rollout: &tentaclev1.Rollout{Window: 3, Pause: durationpb.New(time.Minute), FailurePolicy: "continue"}})
	if err != nil {
		t.Fatal(err)
	}
	apps, _ := c.admin.ListApplications(c.ctx(), &tentaclev1.ListApplicationsRequest{})
	for _, got := range []*tentaclev1.Rollout{app.GetApplication().GetRollout(), apps.GetApplications()[0].GetRollout()} {
		if got.GetWindow() != 3 || got.GetPause().AsDuration() != time.Minute || got.GetFailurePolicy() != "continue" {
			t.Errorf("stored rollout %v, want window 3, pause 1m, continue", got)
		}
	}
}

// TestHaltCancelsTasksWaitingForOfflineAgents: with policy halt, a failure
// also cancels the tasks still queued for agents that are offline, so the
// deployment ends instead of waiting for them.
func TestHaltCancelsTasksWaitingForOfflineAgents(t *testing.T) {
	t.Parallel()
	c, _, fleet := startFleet(t, t.TempDir(), 2, nil) // one wave, policy halt
	fleet[0].runner.fail = true
	fleet[0].run(t) // fleet[1] stays offline
	final := c.wait(c.deploy("prod", "web", "1.0"))
	wantFinished(t, final, tentaclev1.DeploymentState_DEPLOYMENT_STATE_FAILED, map[string]tentaclev1.TaskState{
		fleet[0].name: tentaclev1.TaskState_TASK_STATE_FAILED, fleet[1].name: tentaclev1.TaskState_TASK_STATE_CANCELLED,
	})
	if k := byTarget(final)[fleet[1].name].GetFailureKind(); k != tentaclev1.FailureKind_FAILURE_KIND_HALTED {
		t.Errorf("offline target's task kind %v, want halted", k)
	}
}
