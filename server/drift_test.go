package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tentacle-deploy/tentacle/internal/pki"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// healthAgent is an enrolled target whose sessions the test drives by
// hand: it sends the health reports and heartbeats a real agent would.
type healthAgent struct {
	statusAgent
	client tentaclev1.AgentServiceClient
	cancel context.CancelFunc
}

// enrollHealthAgent enrolls host into env and opens a session.
func enrollHealthAgent(t *testing.T, s *Server, c tentaclev1.AdminServiceClient, env, host string) (*healthAgent, *tentaclev1.Welcome) {
	t.Helper()
	tok, err := c.CreateJoinToken(ctxT(t), &tentaclev1.CreateJoinTokenRequest{Environment: env})
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, csrPEM, _ := pki.NewKeyAndCSR(host)
	ac, _ := agentConn(t, s, nil, nil)
	resp, err := ac.Enroll(ctxT(t), &tentaclev1.EnrollRequest{Token: tok.GetToken(), CsrPem: csrPEM, Hostname: host})
	if err != nil {
		t.Fatal(err)
	}
	a := &healthAgent{statusAgent: statusAgent{name: resp.GetTargetName()}}
	a.client, _ = agentConn(t, s, resp.GetCertificatePem(), keyPEM)
	return a, a.connect(t)
}

// connect opens a new session and returns its Welcome.
func (a *healthAgent) connect(t *testing.T) *tentaclev1.Welcome {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := a.client.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&tentaclev1.ConnectRequest{Msg: &tentaclev1.ConnectRequest_Hello{Hello: &tentaclev1.Hello{InstanceId: a.name}}}); err != nil {
		t.Fatal(err)
	}
	m, err := stream.Recv()
	if err != nil || m.GetWelcome() == nil {
		t.Fatalf("%s: no Welcome: %v, %v", a.name, m, err)
	}
	a.stream, a.cancel = stream, cancel
	return m.GetWelcome()
}

func (a *healthAgent) send(t *testing.T, m *tentaclev1.ConnectRequest) {
	t.Helper()
	if err := a.stream.Send(m); err != nil {
		t.Fatalf("%s: %v", a.name, err)
	}
}

func (a *healthAgent) sendReport(t *testing.T, r *tentaclev1.HealthReport) {
	t.Helper()
	a.send(t, &tentaclev1.ConnectRequest{Msg: &tentaclev1.ConnectRequest_HealthReport{HealthReport: r}})
}

// eventually polls f until it returns "" (nothing left to wait for), or
// fails with what f said last after 20 s.
func eventually(t *testing.T, f func() string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		msg := f()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func getTarget(t *testing.T, c tentaclev1.AdminServiceClient, name string) *tentaclev1.Target {
	t.Helper()
	resp, err := c.GetTarget(ctxT(t), &tentaclev1.GetTargetRequest{Target: name})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetTarget()
}

// targetLine is a target's state and reasons, compact enough to compare.
func targetLine(tg *tentaclev1.Target) string {
	return strings.ToLower(strings.TrimPrefix(tg.GetHealthState().String(), "TARGET_HEALTH_STATE_")) + ": " + strings.Join(tg.GetHealthReasons(), " | ")
}

// A container stopped by hand shows as drift in GetTarget, ListTargets and
// GetStatus, and deploy --missing picks the target to put it right; the
// report outlives the session.
func TestDriftOverSession(t *testing.T) {
	t.Parallel()
	s, c := webInDev(t, "1.0")
	ctx := ctxT(t)
	a, welcome := enrollHealthAgent(t, s, c, "dev", "a")
	if len(welcome.GetApplications()) != 0 {
		t.Errorf("Welcome before any deployment lists %v", welcome.GetApplications())
	}
	if got, want := targetLine(getTarget(t, c, a.name)), "degraded: no health report from the agent yet (an agent older than the server sends none)"; got != want {
		t.Errorf("before any report:\n got: %s\nwant: %s", got, want)
	}
	if _, err := c.CreateDeployment(ctx, &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.0", Environment: "dev"}); err != nil {
		t.Fatal(err)
	}
	taskID := a.take(t)
	a.report(t, taskID, tentaclev1.TaskState_TASK_STATE_SUCCEEDED)

	web := &tentaclev1.ContainerHealth{Application: "web", Name: "web", ContainerId: "c1", State: "running", Health: "healthy", TaskId: taskID, Image: "r.example.com/web:1.0"}
	base := &tentaclev1.HealthReport{Sequence: 1, ObservedAt: timestamppb.Now(), AgentVersion: "1.2.3", AgentStartedAt: timestamppb.New(time.Now().Add(-time.Hour)),
		Engine:     &tentaclev1.EngineHealth{Reachable: true, Version: "28.0.1", RootDir: "/var/lib/docker", DiskFreeBytes: 60 << 30, DiskTotalBytes: 100 << 30},
		Containers: []*tentaclev1.ContainerHealth{web}}
	a.sendReport(t, base)
	eventually(t, func() string {
		if got := targetLine(getTarget(t, c, a.name)); got != "healthy: " {
			return "after a good report: " + got
		}
		return ""
	})
	_, err := c.CreateDeployment(ctx, &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.0", Environment: "dev", MissingOnly: true})
	wantStatus(t, err, codes.FailedPrecondition, "nothing to deploy: every target of dev already runs web 1.0")

	// Stopped by hand.
	stopped := &tentaclev1.ContainerHealth{Application: "web", Name: "web", ContainerId: "c1", State: "exited", ExitCode: 137,
		FinishedAt: timestamppb.New(time.Date(2026, 11, 26, 12, 1, 2, 0, time.UTC)), TaskId: taskID}
	a.sendReport(t, &tentaclev1.HealthReport{Sequence: 2, ObservedAt: timestamppb.Now(), AgentVersion: "1.2.3", AgentStartedAt: base.GetAgentStartedAt(),
		Engine: base.GetEngine(), Containers: []*tentaclev1.ContainerHealth{stopped}})
	wantReason := "drift: container web exited with code 137 at 2026-11-26 12:01:02 UTC (stopped or killed by hand?) (tentaclectl deploy --missing puts it right)"
	eventually(t, func() string {
		if got := targetLine(getTarget(t, c, a.name)); got != "degraded: "+wantReason {
			return "after the container stopped: " + got
		}
		return ""
	})
	tg := getTarget(t, c, a.name)
	h := tg.GetHealth()
	if len(h.GetDrift()) != 1 || h.GetDrift()[0].GetKind() != "stopped" || h.GetDrift()[0].GetExpectedTaskId() != taskID ||
		h.GetDrift()[0].GetExpectedReleaseVersion() != "1.0" || h.GetDrift()[0].GetSince() == nil {
		t.Errorf("GetTarget drift = %v", h.GetDrift())
	}
	if h.GetEngine().GetVersion() != "28.0.1" || len(h.GetContainers()) != 1 || h.GetContainers()[0].GetState() != "exited" ||
		h.GetReportedAt() == nil || !h.GetAgentStartedAt().AsTime().Equal(base.GetAgentStartedAt().AsTime()) {
		t.Errorf("GetTarget health = %v", h)
	}
	list, err := c.ListTargets(ctx, &tentaclev1.ListTargetsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := targetLine(list.GetTargets()[0]); got != "degraded: "+wantReason {
		t.Errorf("ListTargets: %s", got)
	}
	if list.GetTargets()[0].GetHealth() != nil {
		t.Errorf("ListTargets carries the details: %v", list.GetTargets()[0].GetHealth())
	}
	st, err := c.GetStatus(ctx, &tentaclev1.GetStatusRequest{Application: "web", Environment: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	cell := st.GetApplications()[0]
	if cell.GetState() != "drift" || cell.GetTargets()[0].GetDrift().GetKind() != "stopped" ||
		cell.GetTargets()[0].GetHealthState() != tentaclev1.TargetHealthState_TARGET_HEALTH_STATE_DEGRADED {
		t.Errorf("GetStatus: %v", cell)
	}

	// deploy --missing puts it right: the drifted target gets a task,
	// and while it runs the application's drift is not judged.
	resp, err := c.CreateDeployment(ctx, &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.0", Environment: "dev", MissingOnly: true})
	if err != nil {
		t.Fatalf("deploy --missing with drift: %v", err)
	}
	if len(resp.GetTasks()) != 1 || resp.GetTasks()[0].GetTargetName() != a.name || resp.GetDeployment().GetKind() != "missing" {
		t.Fatalf("deploy --missing tasks = %v", resp.GetTasks())
	}
	fix := a.take(t)
	if got := targetLine(getTarget(t, c, a.name)); got != "healthy: " {
		t.Errorf("while the fix runs: %s", got)
	}
	a.report(t, fix, tentaclev1.TaskState_TASK_STATE_SUCCEEDED)
	// Until the agent reports the fix's container, the report it sent
	// last is judged against the fix's task.
	if got := targetLine(getTarget(t, c, a.name)); !strings.Contains(got, "container web was created by task "+taskID+", not by task "+fix) {
		t.Errorf("after the fix, before the next report: %s", got)
	}
	web.TaskId = fix
	a.sendReport(t, &tentaclev1.HealthReport{Sequence: 3, ObservedAt: timestamppb.Now(), AgentVersion: "1.2.3", Engine: base.GetEngine(), Containers: []*tentaclev1.ContainerHealth{web}})
	eventually(t, func() string {
		if got := targetLine(getTarget(t, c, a.name)); got != "healthy: " {
			return "after the fix: " + got
		}
		return ""
	})

	// A heartbeat from a clock two minutes ahead.
	a.send(t, &tentaclev1.ConnectRequest{Msg: &tentaclev1.ConnectRequest_Heartbeat{Heartbeat: &tentaclev1.Heartbeat{SentAt: timestamppb.New(time.Now().Add(2 * time.Minute))}}})
	eventually(t, func() string {
		tg := getTarget(t, c, a.name)
		skew := tg.GetHealth().GetClockSkew().AsDuration()
		if skew < 110*time.Second || skew > 130*time.Second || !strings.Contains(targetLine(tg), "ahead of the server's, more than 30s (--health-clock-skew)") {
			return "after a heartbeat 2m ahead: skew " + skew.String() + ", " + targetLine(tg)
		}
		return ""
	})

	// The session ends: unavailable, and the last report is still shown.
	a.cancel()
	eventually(t, func() string {
		tg := getTarget(t, c, a.name)
		if tg.GetHealthState() != tentaclev1.TargetHealthState_TARGET_HEALTH_STATE_UNAVAILABLE ||
			!strings.HasPrefix(tg.GetHealthReasons()[0], "no session (last seen ") || !strings.HasSuffix(tg.GetHealthReasons()[0], ": agent stopped, host down or link cut") {
			return "after the session ended: " + targetLine(tg)
		}
		if h := tg.GetHealth(); h.GetReportedAt() == nil || len(h.GetContainers()) != 1 || h.GetContainers()[0].GetTaskId() != fix || h.GetEngine().GetVersion() != "28.0.1" {
			return "after the session ended, the last report is not shown: " + h.String()
		}
		return ""
	})
	states, err := s.TargetStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if states[tentaclev1.TargetHealthState_TARGET_HEALTH_STATE_UNAVAILABLE] != 1 || states[tentaclev1.TargetHealthState_TARGET_HEALTH_STATE_HEALTHY] != 0 || len(states) != 4 {
		t.Errorf("TargetStates = %v", states)
	}

	// A new session: Welcome names the application, and the report of
	// the last session does not count for this one.
	welcome = a.connect(t)
	if got := strings.Join(welcome.GetApplications(), ","); got != "web" {
		t.Errorf("Welcome.applications = %q, want web", got)
	}
	if got, want := targetLine(getTarget(t, c, a.name)), "degraded: no health report from the agent yet (an agent older than the server sends none)"; got != want {
		t.Errorf("new session:\n got: %s\nwant: %s", got, want)
	}

	_, err = c.GetTarget(ctx, &tentaclev1.GetTargetRequest{Target: "nope"})
	wantStatus(t, err, codes.NotFound, `target "nope": not found: tentaclectl targets lists them`)
	_, err = c.GetTarget(ctx, &tentaclev1.GetTargetRequest{})
	wantStatus(t, err, codes.InvalidArgument, "target: required: give its name or id (see tentaclectl targets)")
	if got := getTarget(t, c, getTarget(t, c, a.name).GetId()).GetName(); got != a.name {
		t.Errorf("GetTarget by id: %s", got)
	}
}

// An unreachable engine makes the target unhealthy; reaching it again
// makes it healthy.
func TestEngineUnreachable(t *testing.T) {
	t.Parallel()
	s, c := webInDev(t)
	a, _ := enrollHealthAgent(t, s, c, "dev", "a")
	a.sendReport(t, &tentaclev1.HealthReport{Sequence: 1, Engine: &tentaclev1.EngineHealth{Error: "dial unix /var/run/docker.sock: connect: connection refused"}})
	eventually(t, func() string {
		if got := targetLine(getTarget(t, c, a.name)); got != "unhealthy: Docker engine unreachable: dial unix /var/run/docker.sock: connect: connection refused" {
			return got
		}
		return ""
	})
	a.sendReport(t, &tentaclev1.HealthReport{Sequence: 2, Engine: &tentaclev1.EngineHealth{Reachable: true}})
	eventually(t, func() string {
		if got := targetLine(getTarget(t, c, a.name)); got != "healthy: " {
			return got
		}
		return ""
	})
}

// taskLine is a task's target, state, failure kind and message.
func taskLines(tasks []*tentaclev1.Task) string {
	var out []string
	for _, tk := range tasks {
		out = append(out, tk.GetTargetName()+":"+taskStateName(tk.GetState())+":"+strings.ToLower(strings.TrimPrefix(tk.GetFailureKind().String(), "FAILURE_KIND_"))+":"+tk.GetMessage())
	}
	return strings.Join(out, "\n")
}

func TestDeployUnavailableTargets(t *testing.T) {
	t.Parallel()
	s, c := webInDev(t, "1.0")
	ctx := ctxT(t)
	a, _ := enrollHealthAgent(t, s, c, "dev", "a")
	enrollSession(t, s, c, "dev", "b", false) // never connects
	deploy := func(policy tentaclev1.UnavailableTargets, r *tentaclev1.Rollout) (*tentaclev1.CreateDeploymentResponse, error) {
		return c.CreateDeployment(ctx, &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.0", Environment: "dev", UnavailableTargets: policy, Rollout: r})
	}
	const failMsg = "target b has no session (agent stopped, host down or link cut): failed at once, as the deployment asked (unavailable targets: fail)"

	t.Run("skip", func(t *testing.T) {
		resp, err := deploy(tentaclev1.UnavailableTargets_UNAVAILABLE_TARGETS_SKIP, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := taskLines(resp.GetTasks()); got != "a:queued:unspecified:" {
			t.Errorf("tasks:\n%s", got)
		}
		if got := strings.Join(resp.GetDeployment().GetSkippedTargets(), ","); got != "b" {
			t.Errorf("skipped_targets = %q, want b", got)
		}
		a.finish(t, tentaclev1.TaskState_TASK_STATE_SUCCEEDED)
		d, err := c.GetDeployment(ctx, &tentaclev1.GetDeploymentRequest{Id: resp.GetDeployment().GetId()})
		if err != nil || d.GetDeployment().GetState() != tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED || len(d.GetDeployment().GetSkippedTargets()) != 1 {
			t.Errorf("after a's task: %v, %v", d, err)
		}
	})
	t.Run("fail halts", func(t *testing.T) {
		resp, err := deploy(tentaclev1.UnavailableTargets_UNAVAILABLE_TARGETS_FAIL, nil)
		if err != nil {
			t.Fatal(err)
		}
		// a's task was cancelled before it was sent: the halt policy.
		if got, want := taskLines(resp.GetTasks()), "a:cancelled:halted:halted: task on b failed\nb:failed:target_unavailable:"+failMsg; got != want {
			t.Errorf("tasks:\n got: %s\nwant: %s", got, want)
		}
		if st := resp.GetDeployment().GetState(); st != tentaclev1.DeploymentState_DEPLOYMENT_STATE_FAILED {
			t.Errorf("deployment %s, want failed", st)
		}
	})
	t.Run("fail continues", func(t *testing.T) {
		resp, err := deploy(tentaclev1.UnavailableTargets_UNAVAILABLE_TARGETS_FAIL, &tentaclev1.Rollout{FailurePolicy: "continue"})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := taskLines(resp.GetTasks()), "a:queued:unspecified:\nb:failed:target_unavailable:"+failMsg; got != want {
			t.Errorf("tasks:\n got: %s\nwant: %s", got, want)
		}
		a.finish(t, tentaclev1.TaskState_TASK_STATE_SUCCEEDED)
		d, err := c.GetDeployment(ctx, &tentaclev1.GetDeploymentRequest{Id: resp.GetDeployment().GetId()})
		if err != nil || d.GetDeployment().GetState() != tentaclev1.DeploymentState_DEPLOYMENT_STATE_FAILED {
			t.Errorf("after a's task: %v, %v", d, err)
		}
	})
	t.Run("wait queues", func(t *testing.T) {
		resp, err := deploy(tentaclev1.UnavailableTargets_UNAVAILABLE_TARGETS_WAIT, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := taskLines(resp.GetTasks()); got != "a:queued:unspecified:\nb:queued:unspecified:" {
			t.Errorf("tasks:\n%s", got)
		}
		a.finish(t, tentaclev1.TaskState_TASK_STATE_SUCCEEDED)
		if _, err := c.CancelDeployment(ctx, &tentaclev1.CancelDeploymentRequest{Id: resp.GetDeployment().GetId()}); err != nil {
			t.Fatal(err)
		}
	})

	// Every target of prod is unavailable.
	if _, err := c.CreateEnvironment(ctx, &tentaclev1.CreateEnvironmentRequest{Name: "prod"}); err != nil {
		t.Fatal(err)
	}
	enrollSession(t, s, c, "prod", "p", false)
	prod := func(policy tentaclev1.UnavailableTargets) (*tentaclev1.CreateDeploymentResponse, error) {
		return c.CreateDeployment(ctx, &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.0", Environment: "prod", UnavailableTargets: policy})
	}
	_, err := prod(tentaclev1.UnavailableTargets_UNAVAILABLE_TARGETS_SKIP)
	wantStatus(t, err, codes.FailedPrecondition, "no target of prod for web has a session (unavailable: p): nothing to deploy with --unavailable skip; start their agents, or use --unavailable wait to queue the tasks until they return")
	resp, err := prod(tentaclev1.UnavailableTargets_UNAVAILABLE_TARGETS_FAIL)
	if err != nil {
		t.Fatal(err)
	}
	if st := resp.GetDeployment().GetState(); st != tentaclev1.DeploymentState_DEPLOYMENT_STATE_FAILED || resp.GetDeployment().GetFinishedAt() == nil {
		t.Errorf("every task failed at once: deployment %s, want failed and finished", st)
	}
	_, err = prod(tentaclev1.UnavailableTargets(9))
	wantStatus(t, err, codes.InvalidArgument, "unavailable_targets: 9 is not a policy: use WAIT, SKIP or FAIL")
}

// A report that changes nothing but its sequence and time is not written
// again; one that changes something is.
func TestHealthReportStoredWhenChanged(t *testing.T) {
	t.Parallel()
	s, c := webInDev(t)
	ctx := ctxT(t)
	a, _ := enrollHealthAgent(t, s, c, "dev", "a")
	id := getTarget(t, c, a.name).GetId()
	stored := func() (string, time.Time) {
		t.Helper()
		tg, err := s.Store().GetTarget(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return string(tg.Health), tg.HealthAt
	}
	engine := &tentaclev1.EngineHealth{Reachable: true, Version: "28.0.1"}
	a.sendReport(t, &tentaclev1.HealthReport{Sequence: 1, ObservedAt: timestamppb.Now(), Engine: engine})
	var first time.Time
	eventually(t, func() string {
		if _, first = stored(); first.IsZero() {
			return "the first report was not stored"
		}
		return ""
	})
	// The heartbeat after it is handled after it: once its skew shows, the
	// second report has been handled too.
	a.sendReport(t, &tentaclev1.HealthReport{Sequence: 2, ObservedAt: timestamppb.Now(), Engine: engine})
	a.send(t, &tentaclev1.ConnectRequest{Msg: &tentaclev1.ConnectRequest_Heartbeat{Heartbeat: &tentaclev1.Heartbeat{SentAt: timestamppb.New(time.Now().Add(time.Hour))}}})
	eventually(t, func() string {
		if getTarget(t, c, a.name).GetHealth().GetClockSkew().AsDuration() < 50*time.Minute {
			return "the heartbeat was not handled"
		}
		return ""
	})
	if _, at := stored(); !at.Equal(first) {
		t.Errorf("an unchanged report was stored again: at %v, first at %v", at, first)
	}
	a.sendReport(t, &tentaclev1.HealthReport{Sequence: 3, ObservedAt: timestamppb.Now(), Engine: &tentaclev1.EngineHealth{Reachable: true, Version: "28.0.2"}})
	eventually(t, func() string {
		if data, at := stored(); at.Equal(first) || !strings.Contains(data, "28.0.2") {
			return "a changed report was not stored"
		}
		return ""
	})
}

// The last report outlives the server: after a restart, a target whose
// agent has not come back shows what it last reported, and when.
func TestHealthReportSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, stop := startServerAt(t, dir)
	c := adminClient(t, s, s.BootstrapToken)
	ctx := ctxT(t)
	tok, err := c.CreateAdminToken(ctx, &tentaclev1.CreateAdminTokenRequest{Name: "ops", Role: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateEnvironment(ctx, &tentaclev1.CreateEnvironmentRequest{Name: "dev"}); err != nil {
		t.Fatal(err)
	}
	a, _ := enrollHealthAgent(t, s, c, "dev", "a")
	a.sendReport(t, &tentaclev1.HealthReport{Sequence: 1, AgentVersion: "1.2.3", Engine: &tentaclev1.EngineHealth{Reachable: true, Version: "28.0.1"},
		Containers: []*tentaclev1.ContainerHealth{{Application: "web", Name: "web", State: "running"}}})
	var reported time.Time
	eventually(t, func() string {
		h := getTarget(t, c, a.name).GetHealth()
		if h.GetEngine().GetVersion() != "28.0.1" {
			return "the report was not taken"
		}
		reported = h.GetReportedAt().AsTime()
		return ""
	})
	stop()

	s2, _ := startServerAt(t, dir)
	c2 := adminClient(t, s2, tok.GetToken())
	tg := getTarget(t, c2, a.name)
	if tg.GetHealthState() != tentaclev1.TargetHealthState_TARGET_HEALTH_STATE_UNAVAILABLE {
		t.Errorf("after the restart: %s", targetLine(tg))
	}
	h := tg.GetHealth()
	if h.GetEngine().GetVersion() != "28.0.1" || len(h.GetContainers()) != 1 || !h.GetReportedAt().AsTime().Equal(reported) {
		t.Errorf("after the restart, the last report is %v (reported %v), want engine 28.0.1, container web, reported at %v", h, h.GetReportedAt().AsTime(), reported)
	}
}

// A revoked target never reports again, so the server keeps nothing of its
// health in memory.
func TestRevokedTargetsHealthIsForgotten(t *testing.T) {
	t.Parallel()
	s, c := webInDev(t)
	a, _ := enrollHealthAgent(t, s, c, "dev", "a")
	a.sendReport(t, &tentaclev1.HealthReport{Sequence: 1, Engine: &tentaclev1.EngineHealth{Reachable: true}})
	id := getTarget(t, c, a.name).GetId()
	held := func() bool {
		s.health.mu.Lock()
		defer s.health.mu.Unlock()
		return s.health.targets[id] != nil
	}
	eventually(t, func() string {
		if !held() {
			return "report not held"
		}
		return ""
	})
	if _, err := c.RevokeTarget(ctxT(t), &tentaclev1.RevokeTargetRequest{Target: a.name}); err != nil {
		t.Fatal(err)
	}
	if held() {
		t.Fatal("the revoked target's health is still held")
	}
}
