package server

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// These tests speak the agent protocol by hand, to cancel deployments while
// the agent is away in states a real agent passes through too quickly to
// catch: a task sent but never acknowledged, or accepted and running.

// connectHolding opens a session whose Hello lists held (unfinished) tasks.
func connectHolding(t *testing.T, ac tentaclev1.AgentServiceClient, held ...string) tentaclev1.AgentService_ConnectClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := ac.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hello := &tentaclev1.Hello{InstanceId: "i1"}
	for _, id := range held {
		hello.HeldTasks = append(hello.HeldTasks, &tentaclev1.HeldTask{TaskId: id})
	}
	if err := stream.Send(&tentaclev1.ConnectRequest{Msg: &tentaclev1.ConnectRequest_Hello{Hello: hello}}); err != nil {
		t.Fatal(err)
	}
	if m, err := stream.Recv(); err != nil || m.GetWelcome() == nil {
		t.Fatalf("first message %v, %v; want Welcome", m, err)
	}
	return stream
}

// recvNext returns the next message other than an event ack.
func recvNext(t *testing.T, stream tentaclev1.AgentService_ConnectClient) *tentaclev1.ConnectResponse {
	t.Helper()
	type result struct {
		m   *tentaclev1.ConnectResponse
		err error
	}
	ch := make(chan result, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil || m.GetEventAck() == nil {
				ch <- result{m, err}
				return
			}
		}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.m
	case <-time.After(20 * time.Second):
		t.Fatal("no message from the server within 20s")
		return nil
	}
}

// until polls cond for up to 20 seconds.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitState waits until the deployment reaches state and returns it.
func waitState(t *testing.T, c tentaclev1.AdminServiceClient, id string, state tentaclev1.DeploymentState) *tentaclev1.GetDeploymentResponse {
	t.Helper()
	var got *tentaclev1.GetDeploymentResponse
	until(t, "deployment "+state.String(), func() bool {
		got = getDeployment(t, c, id)
		return got.GetDeployment().GetState() == state
	})
	return got
}

// waitTask waits until the deployment's first task reaches state.
func waitTask(t *testing.T, c tentaclev1.AdminServiceClient, id string, state tentaclev1.TaskState) {
	t.Helper()
	until(t, "task "+state.String(), func() bool { return getDeployment(t, c, id).GetTasks()[0].GetState() == state })
}

func getDeployment(t *testing.T, c tentaclev1.AdminServiceClient, id string) *tentaclev1.GetDeploymentResponse {
	t.Helper()
	got, err := c.GetDeployment(ctxT(t), &tentaclev1.GetDeploymentRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// webWithOneAgent starts a server with application web 1.0 and one target
// in prod whose session is open by hand (after Welcome); cancel ends it.
func webWithOneAgent(t *testing.T) (*Server, tentaclev1.AdminServiceClient, tentaclev1.AgentServiceClient, tentaclev1.AgentService_ConnectClient, context.CancelFunc) {
	t.Helper()
	s := startServer(t)
	c := adminClient(t, s, s.BootstrapToken)
	ctx := ctxT(t)
	_, certPEM, keyPEM := enrollRaw(t, s, c, "prod")
	c.CreateApplication(ctx, &tentaclev1.CreateApplicationRequest{Name: "web", ImageRepository: "r.example.com/web"})
	c.CreateRelease(ctx, &tentaclev1.CreateReleaseRequest{Application: "web", ImageTag: "1.0"})
	ac, _ := agentConn(t, s, certPEM, keyPEM)
	first, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := ac.Connect(first)
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&tentaclev1.ConnectRequest{Msg: &tentaclev1.ConnectRequest_Hello{Hello: &tentaclev1.Hello{InstanceId: "i1"}}})
	if m, err := stream.Recv(); err != nil || m.GetWelcome() == nil {
		t.Fatalf("first message %v, %v; want Welcome", m, err)
	}
	return s, c, ac, stream, cancel
}

// deployWeb deploys web 1.0 to prod (with deadline, if not nil) and
// returns the deployment and the task the agent of stream received.
func deployWeb(t *testing.T, c tentaclev1.AdminServiceClient, stream tentaclev1.AgentService_ConnectClient, deadline *durationpb.Duration) (*tentaclev1.CreateDeploymentResponse, string) {
	t.Helper()
	d, err := c.CreateDeployment(ctxT(t), &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.0", Environment: "prod", Deadline: deadline})
	if err != nil {
		t.Fatal(err)
	}
	return d, recvNext(t, stream).GetAssign().GetTask().GetTaskId()
}

func TestCancelReachesAgentThatWasAway(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		accepted bool // the agent acknowledged the task before it went away
		held     bool // and lists it in Hello when it returns
	}{
		{"sent, never received", false, false},
		{"received, not acknowledged", false, true},
		{"accepted and running", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, c, ac, stream, cancel := webWithOneAgent(t)
			ctx := ctxT(t)
			d, task := deployWeb(t, c, stream, nil)
			if task == "" {
				t.Fatal("no Assign")
			}
			waitTask(t, c, d.GetDeployment().GetId(), tentaclev1.TaskState_TASK_STATE_ASSIGNED)
			if tc.accepted {
				stream.Send(&tentaclev1.ConnectRequest{Msg: &tentaclev1.ConnectRequest_TaskAccepted{TaskAccepted: &tentaclev1.TaskAccepted{TaskId: task}}})
				stream.Send(&tentaclev1.ConnectRequest{Msg: &tentaclev1.ConnectRequest_TaskEvent{TaskEvent: &tentaclev1.TaskEvent{
					TaskId: task, Sequence: 1, State: tentaclev1.TaskState_TASK_STATE_PULLING}}})
				waitTask(t, c, d.GetDeployment().GetId(), tentaclev1.TaskState_TASK_STATE_PULLING)
			}
			cancel() // the agent goes away
			until(t, "the session to end", func() bool { return !s.sessions.connected(d.GetTasks()[0].GetTargetId()) })

			resp, err := c.CancelDeployment(ctx, &tentaclev1.CancelDeploymentRequest{Id: d.GetDeployment().GetId()})
			if err != nil {
				t.Fatal(err)
			}
			if s := resp.GetDeployment().GetState(); s != tentaclev1.DeploymentState_DEPLOYMENT_STATE_RUNNING {
				t.Fatalf("deployment right after the cancel: %v, want still running (its task was sent)", s)
			}
			var held []string
			if tc.held {
				held = []string{task}
			}
			again := connectHolding(t, ac, held...)
			if !tc.held {
				// The agent never had it: the server cancels it without it.
				got := waitState(t, c, d.GetDeployment().GetId(), tentaclev1.DeploymentState_DEPLOYMENT_STATE_CANCELLED)
				if m := got.GetTasks()[0].GetMessage(); m != "cancelled: the deployment was cancelled before its agent received the task" {
					t.Errorf("task message %q", m)
				}
				// Nothing of it is sent: the next message is a new deployment's task.
				c.CreateRelease(ctx, &tentaclev1.CreateReleaseRequest{Application: "web", ImageTag: "2.0"})
				d2, err := c.CreateDeployment(ctx, &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "2.0", Environment: "prod"})
				if err != nil {
					t.Fatal(err)
				}
				if m := recvNext(t, again); m.GetAssign().GetTask().GetTaskId() != d2.GetTasks()[0].GetId() {
					t.Fatalf("after the cancel the agent got %v, want only the new deployment's task", m)
				}
				return
			}
			m := recvNext(t, again)
			if m.GetCancel().GetTaskId() != task {
				t.Fatalf("returning agent got %v, want Cancel of %s", m, task)
			}
			// The agent stops the task and reports it: the deployment ends cancelled.
			again.Send(&tentaclev1.ConnectRequest{Msg: &tentaclev1.ConnectRequest_TaskEvent{TaskEvent: &tentaclev1.TaskEvent{
				TaskId: task, Sequence: 2, State: tentaclev1.TaskState_TASK_STATE_CANCELLED}}})
			waitState(t, c, d.GetDeployment().GetId(), tentaclev1.DeploymentState_DEPLOYMENT_STATE_CANCELLED)
		})
	}
}

// TestRolloutCallsNeedTheirRole: a viewer may not cancel or roll back, and
// only an admin changes an environment; each refusal is audited.
func TestRolloutCallsNeedTheirRole(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := ctxT(t)
	viewerTok, _ := s.CreateAdminToken(ctx, "watcher", RoleViewer, 0)
	deployerTok, _ := s.CreateAdminToken(ctx, "ci", RoleDeployer, 0)
	viewer, deployer := adminClient(t, s, viewerTok), adminClient(t, s, deployerTok)
	_, err := viewer.CancelDeployment(ctx, &tentaclev1.CancelDeploymentRequest{Id: "d1"})
	wantStatus(t, err, codes.PermissionDenied, "role viewer may not call CancelDeployment: it needs role deployer")
	_, err = viewer.Rollback(ctx, &tentaclev1.RollbackRequest{Application: "web", Environment: "prod"})
	wantStatus(t, err, codes.PermissionDenied, "role viewer may not call Rollback: it needs role deployer")
	on := true
	_, err = deployer.UpdateEnvironment(ctx, &tentaclev1.UpdateEnvironmentRequest{Name: "prod", AutoDeploy: &on})
	wantStatus(t, err, codes.PermissionDenied, "role deployer may not call UpdateEnvironment: it needs role admin")
	// A deployer may: the calls get as far as the unknown objects.
	_, err = deployer.CancelDeployment(ctx, &tentaclev1.CancelDeploymentRequest{Id: "d1"})
	wantStatus(t, err, codes.NotFound, `deployment "d1": not found`)
	_, err = deployer.Rollback(ctx, &tentaclev1.RollbackRequest{Application: "web", Environment: "prod"})
	wantStatus(t, err, codes.NotFound, `application "web": not found`)
	_, err = deployer.CreateDeployment(ctx, &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.0", Environment: "prod"})
	wantStatus(t, err, codes.NotFound, `release "1.0" of "web": not found`)

	recs, err := adminClient(t, s, s.BootstrapToken).ListAuditRecords(ctx, &tentaclev1.ListAuditRecordsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs.GetRecords() {
		got = append(got, r.GetActor()+" "+r.GetAction()+" "+r.GetObject()+" "+r.GetOutcome())
	}
	for _, want := range []string{
		"admin-token:watcher CancelDeployment deployment/d1 denied: role viewer may not call CancelDeployment: it needs role deployer",
		"admin-token:watcher Rollback application/web→environment/prod denied: role viewer may not call Rollback: it needs role deployer",
		"admin-token:ci UpdateEnvironment environment/prod denied: role deployer may not call UpdateEnvironment: it needs role admin",
		`admin-token:ci CancelDeployment deployment/d1 failed: deployment "d1": not found`,
		`admin-token:ci Rollback application/web→environment/prod failed: application "web": not found`,
		`admin-token:ci CreateDeployment release/web@1.0→environment/prod failed: release "1.0" of "web": not found`,
	} {
		if !slices.Contains(got, want) {
			t.Errorf("no audit record %q in\n%s", want, strings.Join(got, "\n"))
		}
	}
}
