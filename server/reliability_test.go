package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// These tests speak the agent protocol by hand to see what the server
// tells agents when it sheds load, stops, or gives up on a target.

// refusal is a Connect the server did not let in.
type refusal struct {
	code       codes.Code
	msg        string
	retryAfter time.Duration
}

// tryConnect opens a session with Hello and waits up to 20 s for Welcome;
// a refused one returns what the agent is told.
func tryConnect(t *testing.T, ac tentaclev1.AgentServiceClient) (tentaclev1.AgentService_ConnectClient, *refusal) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	stream, err := ac.Connect(ctx)
	if err == nil {
		err = stream.Send(&tentaclev1.ConnectRequest{Msg: &tentaclev1.ConnectRequest_Hello{Hello: &tentaclev1.Hello{InstanceId: "i1"}}})
	}
	if err == io.EOF {
		err = nil // the server already answered: Recv has its status
	}
	var m *tentaclev1.ConnectResponse
	if err == nil {
		m, err = stream.Recv()
	}
	if err == nil && m.GetWelcome() != nil {
		t.Cleanup(cancel)
		return stream, nil
	}
	defer cancel()
	if err == nil {
		t.Fatalf("first message %v, want Welcome", m)
	}
	st, _ := status.FromError(err)
	r := &refusal{code: st.Code(), msg: st.Message(), retryAfter: -1}
	if v := stream.Trailer().Get(RetryAfterKey); len(v) == 1 {
		ms, err := strconv.Atoi(v[0])
		if err != nil {
			t.Fatalf("trailer %s: %q is not a number of milliseconds", RetryAfterKey, v[0])
		}
		r.retryAfter = time.Duration(ms) * time.Millisecond
	}
	return nil, r
}

// TestHandshakeLimitShedsLoadWithARetryHint: with two handshakes allowed
// and both taken, agents are refused at once with ResourceExhausted and a
// retry hint in the trailer; honouring the hint, every one of them gets in.
func TestHandshakeLimitShedsLoadWithARetryHint(t *testing.T) {
	t.Parallel()
	s, _, _ := startServerWith(t, Config{MaxHandshakes: 2}, zaptest.NewLogger(t))
	c := adminClient(t, s, s.BootstrapToken)
	const crowd = 8
	agents := make([]tentaclev1.AgentServiceClient, 2+crowd)
	for i := range agents {
		_, certPEM, keyPEM := enrollRaw(t, s, c, "prod")
		agents[i], _ = agentConn(t, s, certPEM, keyPEM)
	}
	// Two agents open their sessions and are slow to say Hello: they hold
	// both handshake slots.
	slow := make([]tentaclev1.AgentService_ConnectClient, 2)
	for i := range slow {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		var err error
		if slow[i], err = agents[i].Connect(ctx); err != nil {
			t.Fatal(err)
		}
	}
	until(t, "two handshakes in progress", func() bool { return len(s.handshakes.slots) == 2 })

	var mu sync.Mutex
	var refusals []refusal
	refusedOnce := make(chan struct{}, crowd)
	var wg sync.WaitGroup
	errs := make(chan error, crowd)
	for i := range crowd {
		wg.Go(func() {
			first := true
			for attempt := 0; attempt < 20; attempt++ {
				stream, r := tryConnect(t, agents[2+i])
				if stream != nil {
					return
				}
				mu.Lock()
				refusals = append(refusals, *r)
				mu.Unlock()
				if first {
					refusedOnce <- struct{}{}
					first = false
				}
				if r.retryAfter < 0 {
					errs <- fmt.Errorf("refusal %v %q without the %s trailer", r.code, r.msg, RetryAfterKey)
					return
				}
				time.Sleep(r.retryAfter)
			}
			errs <- errors.New("still refused after 20 attempts")
		})
	}
	for range crowd {
		select {
		case <-refusedOnce:
		case <-time.After(20 * time.Second):
			t.Fatal("an agent was neither refused nor let in within 20s while both slots were taken")
		}
	}
	// The slow agents say Hello: they get in, and free their slots.
	for i, stream := range slow {
		stream.Send(&tentaclev1.ConnectRequest{Msg: &tentaclev1.ConnectRequest_Hello{Hello: &tentaclev1.Hello{InstanceId: "slow"}}})
		if m, err := stream.Recv(); err != nil || m.GetWelcome() == nil {
			t.Fatalf("slow agent %d: %v, %v; want Welcome", i, m, err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(refusals) < crowd {
		t.Fatalf("%d refusals, want at least one per agent (%d)", len(refusals), crowd)
	}
	for _, r := range refusals {
		if r.code != codes.ResourceExhausted || !strings.HasPrefix(r.msg, "server busy: 2 agents are connecting at once (tentacle-server serve --max-handshakes): retry in ") {
			t.Errorf("refusal %v %q", r.code, r.msg)
		}
		if r.retryAfter < time.Second || r.retryAfter > 30*time.Second {
			t.Errorf("retry hint %s, want 1s to 30s", r.retryAfter)
		}
	}
	until(t, "every agent connected", func() bool {
		got, err := c.ListTargets(ctxT(t), &tentaclev1.ListTargetsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, tg := range got.GetTargets() {
			if tg.GetConnected() {
				n++
			}
		}
		return n == len(agents)
	})
}

// TestShutdownAsksAgentsToReconnectAndEndsEveryStream: a stopping server
// refuses new sessions with a retry hint, tells each live session to
// reconnect later, and ends agent, log and watch streams, so that it
// stops within its bound instead of waiting on them.
func TestShutdownAsksAgentsToReconnectAndEndsEveryStream(t *testing.T) {
	t.Parallel()
	s, stop, served := startServerWith(t, Config{}, zaptest.NewLogger(t))
	c := adminClient(t, s, s.BootstrapToken)
	ctx := ctxT(t)
	c.CreateEnvironment(ctx, &tentaclev1.CreateEnvironmentRequest{Name: "prod"})
	c.CreateApplication(ctx, &tentaclev1.CreateApplicationRequest{Name: "web", ImageRepository: "r.example.com/web"})
	c.CreateRelease(ctx, &tentaclev1.CreateReleaseRequest{Application: "web", ImageTag: "1.0"})
	var sessions []tentaclev1.AgentService_ConnectClient
	var conns []tentaclev1.AgentServiceClient
	var late tentaclev1.AgentServiceClient
	for i := range 4 {
		_, certPEM, keyPEM := enrollRaw(t, s, c, "prod")
		ac, _ := agentConn(t, s, certPEM, keyPEM)
		if i == 3 {
			late = ac // connects once the shutdown has begun
			continue
		}
		stream, r := tryConnect(t, ac)
		if r != nil {
			t.Fatalf("session refused: %+v", r)
		}
		sessions, conns = append(sessions, stream), append(conns, ac)
	}
	d, err := c.CreateDeployment(ctx, &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.0", Environment: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	// One agent keeps a log stream open; an admin watches the deployment
	// (still running: its last target is offline).
	var task string
	for task == "" {
		task = recvNext(t, sessions[0]).GetAssign().GetTask().GetTaskId()
	}
	logs, err := conns[0].PushLogs(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	logs.Send(&tentaclev1.PushLogsRequest{TaskId: task, Data: []byte("pulling\n")})
	if r, err := logs.Recv(); err != nil || r.GetStoredOffset() != 8 {
		t.Fatalf("log chunk: %v, %v; want stored up to 8", r, err)
	}
	watch, err := c.WatchDeployment(ctxT(t), &tentaclev1.WatchDeploymentRequest{Id: d.GetDeployment().GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatal(err)
	}

	s.refuseNewSessions()
	_, r := tryConnect(t, late)
	if r == nil || r.code != codes.Unavailable || !strings.HasPrefix(r.msg, "server shutting down: retry in ") || r.retryAfter < time.Second {
		t.Fatalf("Connect during shutdown: %+v, want Unavailable with a retry hint", r)
	}
	stop()
	select {
	case <-served:
	case <-time.After(20 * time.Second):
		t.Fatal("server still serving 20s after it was stopped")
	}
	for i, stream := range sessions {
		var got *tentaclev1.Reconnect
		for got == nil {
			m, err := stream.Recv()
			if err != nil {
				t.Fatalf("session %d ended without Reconnect: %v", i, err)
			}
			got = m.GetReconnect()
		}
		if got.GetAfter().AsDuration() != 10*time.Second || got.GetReason() != "server shutting down" {
			t.Errorf("session %d got %v, want Reconnect after 10s, server shutting down", i, got)
		}
		if _, err := stream.Recv(); err == nil {
			t.Errorf("session %d: stream still open after Reconnect", i)
		}
	}
	if _, err := logs.Recv(); status.Code(err) != codes.Unavailable {
		t.Errorf("log stream after shutdown: %v, want Unavailable", err)
	}
	for {
		if _, err := watch.Recv(); err != nil {
			if status.Code(err) != codes.Unavailable {
				t.Errorf("watch after shutdown: %v, want Unavailable", err)
			}
			break
		}
	}
}

// TestDeadlineFailsTasksItsTargetNeverTook: a task sent to an agent that
// never acknowledged it fails with target_unavailable once the deadline
// passes, the deployment with it, and the agent is told to drop it, both
// when it is still connected and when it comes back later holding it.
func TestDeadlineFailsTasksItsTargetNeverTook(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		online bool // the agent stays connected past the deadline
	}{
		{"agent connected but silent about the task", true},
		{"agent away, back after the deadline holding the task", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, c, ac, stream, cancel := webWithOneAgent(t)
			d, task := deployWeb(t, c, stream, durationpb.New(2*time.Second))
			deadline := d.GetDeployment().GetDeadlineAt().AsTime()
			if want := d.GetDeployment().GetCreatedAt().AsTime().Add(2 * time.Second); !deadline.Equal(want) {
				t.Fatalf("deadline_at %s, want created_at + 2s = %s", deadline, want)
			}
			if task == "" {
				t.Fatal("no Assign")
			}
			if !tc.online {
				cancel() // the agent goes away before acknowledging it
				until(t, "the session to end", func() bool { return !s.sessions.connected(d.GetTasks()[0].GetTargetId()) })
			}
			got := waitState(t, c, d.GetDeployment().GetId(), tentaclev1.DeploymentState_DEPLOYMENT_STATE_FAILED)
			tk := got.GetTasks()[0]
			want := fmt.Sprintf("target %s had no session before the deployment's deadline (%s)", tk.GetTargetName(), deadline.UTC().Format(time.RFC3339))
			if tk.GetState() != tentaclev1.TaskState_TASK_STATE_FAILED || tk.GetFailureKind() != tentaclev1.FailureKind_FAILURE_KIND_TARGET_UNAVAILABLE || tk.GetMessage() != want {
				t.Errorf("task after the deadline: %v %v %q\nwant failed, target unavailable, %q", tk.GetState(), tk.GetFailureKind(), tk.GetMessage(), want)
			}
			if !tc.online {
				stream = connectHolding(t, ac, task)
			}
			m := recvNext(t, stream)
			if m.GetCancel().GetTaskId() != task || m.GetCancel().GetReason() != want {
				t.Fatalf("agent holding the overdue task got %v, want Cancel of %s with %q", m, task, want)
			}
		})
	}
}

// TestUnacknowledgedTaskIsSentAgain: an Assign the agent never
// acknowledged (lost on its way) is sent again on the same session.
func TestUnacknowledgedTaskIsSentAgain(t *testing.T) {
	t.Parallel()
	s, c, ac, _, cancel := webWithOneAgent(t)
	ctx := ctxT(t)
	// A session reads the interval when it starts: the next one resends fast.
	s.resendAfterNs.Store(int64(300 * time.Millisecond))
	cancel()
	until(t, "the first session to end", func() bool { return len(s.sessions.all()) == 0 })
	stream := connectHolding(t, ac)
	d, err := c.CreateDeployment(ctx, &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.0", Environment: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	task := d.GetTasks()[0].GetId()
	for i := range 2 {
		if got := recvNext(t, stream).GetAssign().GetTask().GetTaskId(); got != task {
			t.Fatalf("message %d: Assign of %q, want %s", i+1, got, task)
		}
	}
	stream.Send(&tentaclev1.ConnectRequest{Msg: &tentaclev1.ConnectRequest_TaskAccepted{TaskAccepted: &tentaclev1.TaskAccepted{TaskId: task}}})
	waitTask(t, c, d.GetDeployment().GetId(), tentaclev1.TaskState_TASK_STATE_ACCEPTED)
}

// TestReplayedEventsAndLogsAreStoredOnce: an agent that resends events and
// log chunks after a broken session (it cannot know what arrived) changes
// nothing the second time: one record per event, the log once, in order.
func TestReplayedEventsAndLogsAreStoredOnce(t *testing.T) {
	t.Parallel()
	s, c, ac, stream, cancel := webWithOneAgent(t)
	ctx := ctxT(t)
	d, task := deployWeb(t, c, stream, nil)
	report := func(stream tentaclev1.AgentService_ConnectClient, seq uint64, state tentaclev1.TaskState) {
		t.Helper()
		stream.Send(&tentaclev1.ConnectRequest{Msg: &tentaclev1.ConnectRequest_TaskEvent{TaskEvent: &tentaclev1.TaskEvent{
			TaskId: task, Sequence: seq, State: state, Message: state.String()}}})
		for {
			m, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if ack := m.GetEventAck(); ack.GetTaskId() == task && ack.GetSequence() == seq {
				return
			}
		}
	}
	pushLog := func(offset uint64, data string) {
		t.Helper()
		logs, err := ac.PushLogs(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		logs.Send(&tentaclev1.PushLogsRequest{TaskId: task, Offset: offset, Data: []byte(data)})
		if _, err := logs.Recv(); err != nil {
			t.Fatal(err)
		}
		logs.CloseSend()
	}
	stream.Send(&tentaclev1.ConnectRequest{Msg: &tentaclev1.ConnectRequest_TaskAccepted{TaskAccepted: &tentaclev1.TaskAccepted{TaskId: task}}})
	report(stream, 1, tentaclev1.TaskState_TASK_STATE_PULLING)
	pushLog(0, "pulling\n")
	report(stream, 2, tentaclev1.TaskState_TASK_STATE_SUCCEEDED)
	pushLog(8, "done\n")
	cancel()
	until(t, "the session to end", func() bool { return len(s.sessions.all()) == 0 })

	// The agent comes back and resends everything from the start.
	again := connectHolding(t, ac)
	report(again, 1, tentaclev1.TaskState_TASK_STATE_PULLING)
	report(again, 2, tentaclev1.TaskState_TASK_STATE_SUCCEEDED)
	pushLog(0, "pulling\ndone\n")

	watch, err := c.WatchDeployment(ctx, &tentaclev1.WatchDeploymentRequest{Id: d.GetDeployment().GetId()})
	if err != nil {
		t.Fatal(err)
	}
	view, err := watch.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if st := view.GetDeployment().GetState(); st != tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED {
		t.Errorf("deployment %v, want succeeded", st)
	}
	var seqs []uint64
	for _, e := range view.GetEvents() {
		seqs = append(seqs, e.GetSequence())
	}
	if fmt.Sprint(seqs) != "[1 2]" {
		t.Errorf("event sequences stored %v, want [1 2]", seqs)
	}
	logs, err := c.ReadTaskLog(ctx, &tentaclev1.ReadTaskLogRequest{TaskId: task})
	if err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	for {
		m, err := logs.Recv()
		if err != nil {
			break
		}
		got.Write(m.GetData())
	}
	if got.String() != "pulling\ndone\n" {
		t.Errorf("stored log %q, want %q", got.String(), "pulling\ndone\n")
	}
}

// TestDeploymentDeadlineRejections: a deadline out of range, or one that
// passes before the rollout's last wave could start, is refused with the
// field and the fix, and nothing is deployed.
func TestDeploymentDeadlineRejections(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := adminClient(t, s, s.BootstrapToken)
	ctx := ctxT(t)
	enrollRaw(t, s, c, "prod")
	enrollRaw(t, s, c, "prod")
	c.CreateApplication(ctx, &tentaclev1.CreateApplicationRequest{Name: "web", ImageRepository: "r.example.com/web"})
	c.CreateRelease(ctx, &tentaclev1.CreateReleaseRequest{Application: "web", ImageTag: "1.0"})
	for _, tc := range []struct {
		deadline *durationpb.Duration
		rollout  *tentaclev1.Rollout
		code     codes.Code
		msg      string
	}{
		{durationpb.New(500 * time.Millisecond), nil, codes.InvalidArgument,
			"deadline: 500ms out of range: use 1s to 168h (7 days), or leave it unset for the server's default"},
		{durationpb.New(200 * time.Hour), nil, codes.InvalidArgument,
			"deadline: 200h0m0s out of range: use 1s to 168h (7 days), or leave it unset for the server's default"},
		{durationpb.New(30 * time.Minute), &tentaclev1.Rollout{Window: 1, Pause: durationpb.New(time.Hour)}, codes.FailedPrecondition,
			"deadline: 30m0s passes before the last of 2 waves can start (1h0m0s pause between waves): pass a --deadline longer than 1h0m0s, or a shorter --pause"},
		{nil, &tentaclev1.Rollout{Window: 1, Pause: durationpb.New(2 * time.Hour)}, codes.FailedPrecondition,
			"deadline: 1h0m0s passes before the last of 2 waves can start (2h0m0s pause between waves): pass a --deadline longer than 2h0m0s, or a shorter --pause"},
	} {
		_, err := c.CreateDeployment(ctx, &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.0", Environment: "prod",
			Deadline: tc.deadline, Rollout: tc.rollout})
		wantStatus(t, err, tc.code, tc.msg)
	}
	ds, err := c.ListDeployments(ctx, &tentaclev1.ListDeploymentsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(ds.GetDeployments()); n != 0 {
		t.Errorf("%d deployments after refusals, want 0", n)
	}
}
