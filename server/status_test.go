package server

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/tentacle-deploy/tentacle/internal/pki"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// statusAgent is an enrolled target with a live session, driven by hand.
type statusAgent struct {
	name   string
	stream tentaclev1.AgentService_ConnectClient
}

// enrollSession enrolls host into env with roles; with online it opens a
// session, else the target stays offline.
func enrollSession(t *testing.T, s *Server, c tentaclev1.AdminServiceClient, env, host string, online bool, roles ...string) *statusAgent {
	t.Helper()
	tok, err := c.CreateJoinToken(ctxT(t), &tentaclev1.CreateJoinTokenRequest{Environment: env, Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, csrPEM, _ := pki.NewKeyAndCSR(host)
	ac, _ := agentConn(t, s, nil, nil)
	resp, err := ac.Enroll(ctxT(t), &tentaclev1.EnrollRequest{Token: tok.GetToken(), CsrPem: csrPEM, Hostname: host})
	if err != nil {
		t.Fatal(err)
	}
	a := &statusAgent{name: resp.GetTargetName()}
	if online {
		ac, _ = agentConn(t, s, resp.GetCertificatePem(), keyPEM)
		if a.stream, err = connect(t, ac, host); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

// finish takes the next assignment and reports it ended in state, waiting
// for the server's acknowledgement so that the store holds it.
func (a *statusAgent) finish(t *testing.T, state tentaclev1.TaskState) {
	t.Helper()
	a.report(t, a.take(t), state)
}

// take waits for the next assignment and returns its task id.
func (a *statusAgent) take(t *testing.T) string {
	t.Helper()
	var taskID string
	for taskID == "" {
		m, err := a.stream.Recv()
		if err != nil {
			t.Fatalf("%s: %v", a.name, err)
		}
		taskID = m.GetAssign().GetTask().GetTaskId()
	}
	return taskID
}

// report reports taskID ended in state and waits for the acknowledgement.
func (a *statusAgent) report(t *testing.T, taskID string, state tentaclev1.TaskState) {
	t.Helper()
	ev := &tentaclev1.TaskEvent{TaskId: taskID, Sequence: 1, State: state, Message: "done"}
	if err := a.stream.Send(&tentaclev1.ConnectRequest{Msg: &tentaclev1.ConnectRequest_TaskEvent{TaskEvent: ev}}); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := a.stream.Recv()
		if err != nil {
			t.Fatalf("%s: %v", a.name, err)
		}
		if m.GetEventAck().GetTaskId() == taskID {
			return
		}
	}
}

// statusLine is one application in one environment, compact enough to
// compare whole: "web/dev failed current=1.0 latest=2.0:failed a=2.0:succeeded:on b=1.0:failed:on".
func statusLine(st *tentaclev1.ApplicationStatus) string {
	latest := "-"
	if d := st.GetLatestDeployment(); d != nil {
		latest = d.GetReleaseVersion() + ":" + deploymentState(d.GetState())
	}
	parts := []string{fmt.Sprintf("%s/%s %s current=%s latest=%s", st.GetApplication(), st.GetEnvironment(), st.GetState(), st.GetCurrentVersion(), latest)}
	for _, t := range st.GetTargets() {
		conn := "off"
		if t.GetConnected() {
			conn = "on"
		}
		parts = append(parts, fmt.Sprintf("%s=%s:%s:%s", t.GetTarget(), t.GetVersion(), taskStateName(t.GetLastTaskState()), conn))
	}
	return strings.Join(parts, " ")
}

func deploymentState(s tentaclev1.DeploymentState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "DEPLOYMENT_STATE_"))
}

func taskStateName(s tentaclev1.TaskState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "TASK_STATE_"))
}

func TestStatusFollowsDeployments(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := adminClient(t, s, s.BootstrapToken)
	ctx := ctxT(t)
	for _, env := range []string{"dev", "prod"} {
		if _, err := c.CreateEnvironment(ctx, &tentaclev1.CreateEnvironmentRequest{Name: env}); err != nil {
			t.Fatal(err)
		}
	}
	for _, app := range []string{"web", "db"} {
		if _, err := c.CreateApplication(ctx, &tentaclev1.CreateApplicationRequest{Name: app, ImageRepository: "r.example.com/" + app, Roles: []string{app}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []string{"1.0", "2.0", "3.0"} {
		if _, err := c.CreateRelease(ctx, &tentaclev1.CreateReleaseRequest{Application: "web", ImageTag: v}); err != nil {
			t.Fatal(err)
		}
	}
	a := enrollSession(t, s, c, "dev", "a", true, "web")
	b := enrollSession(t, s, c, "dev", "b", true, "web", "edge")
	enrollSession(t, s, c, "dev", "d", true, "db-only") // no app has its roles: in no cell

	viewer, _ := s.CreateAdminToken(ctx, "dashboard", RoleViewer, 0)
	vc := adminClient(t, s, viewer)
	want := func(req *tentaclev1.GetStatusRequest, lines ...string) {
		t.Helper()
		resp, err := vc.GetStatus(ctx, req)
		if err != nil {
			t.Fatalf("GetStatus as viewer: %v", err)
		}
		var got []string
		for _, st := range resp.GetApplications() {
			got = append(got, statusLine(st))
		}
		if g, w := strings.Join(got, "\n"), strings.Join(lines, "\n"); g != w {
			t.Fatalf("status\n got:\n%s\nwant:\n%s", g, w)
		}
	}
	deploy := func(version string) {
		t.Helper()
		if _, err := c.CreateDeployment(ctx, &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: version, Environment: "dev"}); err != nil {
			t.Fatal(err)
		}
	}
	web := &tentaclev1.GetStatusRequest{Application: "web", Environment: "dev"}

	// Every application in every environment, in lifecycle order.
	want(&tentaclev1.GetStatusRequest{},
		"db/dev none current= latest=-",
		"web/dev none current= latest=- a=:unspecified:on b=:unspecified:on",
		"db/prod none current= latest=-",
		"web/prod none current= latest=-")

	deploy("1.0")
	// While it runs, tasks move between queued and assigned: only the
	// state is certain.
	if resp, err := vc.GetStatus(ctx, web); err != nil || resp.GetApplications()[0].GetState() != "deploying" {
		t.Fatalf("during the first deployment: %v, %v; want state deploying", resp, err)
	}
	a.finish(t, tentaclev1.TaskState_TASK_STATE_SUCCEEDED)
	b.finish(t, tentaclev1.TaskState_TASK_STATE_SUCCEEDED)
	want(web, "web/dev healthy current=1.0 latest=1.0:succeeded a=1.0:succeeded:on b=1.0:succeeded:on")

	// A failed deployment after the current one: each target shows what
	// it last ran successfully.
	deploy("2.0")
	a.finish(t, tentaclev1.TaskState_TASK_STATE_SUCCEEDED)
	b.finish(t, tentaclev1.TaskState_TASK_STATE_FAILED)
	want(web, "web/dev failed current=1.0 latest=2.0:failed a=2.0:succeeded:on b=1.0:failed:on")

	deploy("3.0")
	a.finish(t, tentaclev1.TaskState_TASK_STATE_SUCCEEDED)
	b.finish(t, tentaclev1.TaskState_TASK_STATE_SUCCEEDED)
	want(web, "web/dev healthy current=3.0 latest=3.0:succeeded a=3.0:succeeded:on b=3.0:succeeded:on")

	// A new target without a session is offline.
	enrollSession(t, s, c, "dev", "c", false, "web")
	want(web, "web/dev offline current=3.0 latest=3.0:succeeded a=3.0:succeeded:on b=3.0:succeeded:on c=:unspecified:off")
	want(&tentaclev1.GetStatusRequest{Environment: "prod"}, "db/prod none current= latest=-", "web/prod none current= latest=-")

	_, err := vc.GetStatus(ctx, &tentaclev1.GetStatusRequest{Application: "nope"})
	wantStatus(t, err, codes.NotFound, `application "nope": not found`)
	_, err = vc.GetStatus(ctx, &tentaclev1.GetStatusRequest{Environment: "staging"})
	wantStatus(t, err, codes.NotFound, `environment "staging": not found`)
}

// webInDev starts a server with environment dev and application web (no
// roles) with releases of the versions.
func webInDev(t *testing.T, versions ...string) (*Server, tentaclev1.AdminServiceClient) {
	t.Helper()
	s := startServer(t)
	c := adminClient(t, s, s.BootstrapToken)
	ctx := ctxT(t)
	if _, err := c.CreateEnvironment(ctx, &tentaclev1.CreateEnvironmentRequest{Name: "dev"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateApplication(ctx, &tentaclev1.CreateApplicationRequest{Name: "web", ImageRepository: "r.example.com/web"}); err != nil {
		t.Fatal(err)
	}
	for _, v := range versions {
		if _, err := c.CreateRelease(ctx, &tentaclev1.CreateReleaseRequest{Application: "web", ImageTag: v}); err != nil {
			t.Fatal(err)
		}
	}
	return s, c
}

func TestStatusMissingTarget(t *testing.T) {
	t.Parallel()
	s, c := webInDev(t, "1.0")
	ctx := ctxT(t)
	a := enrollSession(t, s, c, "dev", "a", true)
	if _, err := c.CreateDeployment(ctx, &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.0", Environment: "dev"}); err != nil {
		t.Fatal(err)
	}
	a.finish(t, tentaclev1.TaskState_TASK_STATE_SUCCEEDED)
	enrollSession(t, s, c, "dev", "b", true) // joined after the deployment

	resp, err := c.GetStatus(ctx, &tentaclev1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetApplications()) != 1 {
		t.Fatalf("got %d cells, want 1", len(resp.GetApplications()))
	}
	if got, want := statusLine(resp.GetApplications()[0]), "web/dev missing current=1.0 latest=1.0:succeeded a=1.0:succeeded:on b=:unspecified:on"; got != want {
		t.Fatalf("status\n got: %s\nwant: %s", got, want)
	}
}

// Each target's version is looked for in the newest statusTaskHistory
// deployments only, so that a target that keeps failing does not cost a
// query per deployment on every call.
func TestStatusTargetHistoryIsBounded(t *testing.T) {
	t.Parallel()
	s, c := webInDev(t, "1.0", "2.0")
	ctx := ctxT(t)
	a := enrollSession(t, s, c, "dev", "a", true)
	b := enrollSession(t, s, c, "dev", "b", true)
	deploy := func(version string, aState tentaclev1.TaskState) {
		t.Helper()
		if _, err := c.CreateDeployment(ctx, &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: version, Environment: "dev"}); err != nil {
			t.Fatal(err)
		}
		// Both tasks are on their agents before a's may fail: a failure
		// halts the deployment, cancelling a task not yet sent.
		ta, tb := a.take(t), b.take(t)
		a.report(t, ta, aState)
		b.report(t, tb, tentaclev1.TaskState_TASK_STATE_SUCCEEDED)
	}
	line := func() string {
		t.Helper()
		resp, err := c.GetStatus(ctx, &tentaclev1.GetStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return statusLine(resp.GetApplications()[0])
	}
	deploy("1.0", tentaclev1.TaskState_TASK_STATE_SUCCEEDED)
	for range statusTaskHistory - 1 {
		deploy("2.0", tentaclev1.TaskState_TASK_STATE_FAILED)
	}
	if got, want := line(), "web/dev failed current=1.0 latest=2.0:failed a=1.0:failed:on b=2.0:succeeded:on"; got != want {
		t.Fatalf("a's success %d deployments back:\n got: %s\nwant: %s", statusTaskHistory, got, want)
	}
	deploy("2.0", tentaclev1.TaskState_TASK_STATE_FAILED)
	if got, want := line(), "web/dev failed current=1.0 latest=2.0:failed a=:failed:on b=2.0:succeeded:on"; got != want {
		t.Fatalf("a's success %d deployments back:\n got: %s\nwant: %s", statusTaskHistory+1, got, want)
	}
}
