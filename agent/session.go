package agent

import (
	"context"
	"errors"
	"io"
	"runtime"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tentacle-deploy/tentacle/agent/journal"
	"github.com/tentacle-deploy/tentacle/internal/specpb"
	"github.com/tentacle-deploy/tentacle/internal/version"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// session runs one Connect stream: Hello, Welcome, then tasks in and
// events out until the stream breaks. Tasks run on taskCtx so they outlive
// the session; their events wait in the journal for the next one.
func (a *Agent) session(ctx, taskCtx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := a.client.Connect(sctx)
	if err != nil {
		return wrap("connect", err)
	}
	dockerVersion, err := a.runner.EngineVersion(sctx)
	if err != nil {
		a.log.Warn("docker engine not reachable", zap.Error(err))
		dockerVersion = "unreachable"
	}
	hello := &tentaclev1.Hello{AgentVersion: version.Version, Os: runtime.GOOS, Arch: runtime.GOARCH, DockerVersion: dockerVersion, Hostname: hostname(), InstanceId: a.instance}
	for _, h := range a.journal.Held() {
		hello.HeldTasks = append(hello.HeldTasks, &tentaclev1.HeldTask{TaskId: h.TaskID, LastEventSequence: h.LastSeq, Finished: h.Finished})
	}
	if err := stream.Send(&tentaclev1.ConnectRequest{Msg: &tentaclev1.ConnectRequest_Hello{Hello: hello}}); err != nil {
		if errors.Is(err, io.EOF) {
			// The server ended the stream; its reason comes with Recv.
			_, err = stream.Recv()
		}
		return withRetryHint(stream, wrap("send hello", err))
	}
	first, err := stream.Recv()
	if err != nil {
		return withRetryHint(stream, wrap("receive welcome", err))
	}
	welcome := first.GetWelcome()
	if welcome == nil {
		return errNoWelcome
	}
	interval := welcome.GetHeartbeatInterval().AsDuration()
	if interval <= 0 {
		interval = 10 * time.Second
	}
	a.live.Store(true)
	defer a.live.Store(false)
	a.log.Info("session established", zap.String("session", welcome.GetSessionId()), zap.Duration("heartbeat", interval))
	if welcome.GetRenewCertificate() {
		select {
		case a.renewNow <- struct{}{}:
		default:
		}
	}

	out := make(chan *tentaclev1.ConnectRequest, 16)
	errc := make(chan error, 2)
	go func() { errc <- a.sendLoop(sctx, stream, out, interval) }()
	go a.healthLoop(sctx, welcome.GetApplications(), interval, out)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				errc <- wrap("receive", err)
				return
			}
			if rc := m.GetReconnect(); rc != nil {
				// Tasks run on taskCtx and go on; their events wait in the
				// journal for the next session.
				errc <- &reconnectRequest{after: rc.GetAfter().AsDuration(), reason: rc.GetReason()}
				return
			}
			a.handle(sctx, taskCtx, m, out)
		}
	}()
	err = <-errc
	cancel()
	return err
}

// sendLoop is the only sender on the stream: accepts, events (from the
// journal, resent from the last acknowledged one on every new session) and
// heartbeats.
func (a *Agent) sendLoop(ctx context.Context, stream tentaclev1.AgentService_ConnectClient, out <-chan *tentaclev1.ConnectRequest, interval time.Duration) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	sent := map[string]uint64{}
	for {
		wake := a.journal.Wait()
		for id, acked := range a.journal.Unacked() {
			from := max(acked, sent[id])
			for _, e := range a.journal.EventsAfter(id, from) {
				if err := stream.Send(&tentaclev1.ConnectRequest{Msg: &tentaclev1.ConnectRequest_TaskEvent{TaskEvent: eventToProto(id, e)}}); err != nil {
					return wrap("send event", err)
				}
				sent[id] = e.Seq
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m := <-out:
			if err := stream.Send(m); err != nil {
				return wrap("send", err)
			}
		case <-tick.C:
			if err := stream.Send(&tentaclev1.ConnectRequest{Msg: &tentaclev1.ConnectRequest_Heartbeat{Heartbeat: &tentaclev1.Heartbeat{SentAt: timestamppb.Now()}}}); err != nil {
				return wrap("send heartbeat", err)
			}
		case <-wake:
		}
	}
}

func (a *Agent) handle(ctx, taskCtx context.Context, m *tentaclev1.ConnectResponse, out chan<- *tentaclev1.ConnectRequest) {
	switch msg := m.Msg.(type) {
	case *tentaclev1.ConnectResponse_Assign:
		a.accept(ctx, taskCtx, msg.Assign.GetTask(), out)
	case *tentaclev1.ConnectResponse_EventAck:
		if err := a.journal.AckEvents(msg.EventAck.GetTaskId(), msg.EventAck.GetSequence()); err != nil {
			a.log.Error("journal ack", zap.Error(err))
		}
	case *tentaclev1.ConnectResponse_Cancel:
		a.mu.Lock()
		cancel := a.cancels[msg.Cancel.GetTaskId()]
		a.mu.Unlock()
		if cancel != nil {
			a.log.Info("task cancelled by server", zap.String("task", msg.Cancel.GetTaskId()), zap.String("reason", msg.Cancel.GetReason()))
			cancel()
		}
	case *tentaclev1.ConnectResponse_StartTail:
		a.startTail(ctx, msg.StartTail)
	}
}

// accept journals the task before acknowledging it; a task already in the
// journal is acknowledged again but never run twice.
func (a *Agent) accept(ctx, taskCtx context.Context, t *tentaclev1.TaskAssignment, out chan<- *tentaclev1.ConnectRequest) {
	if _, held := a.journal.Assignment(t.GetTaskId()); !held && !a.accepting.Load() {
		a.log.Info("stopping: task left for the next start", zap.String("task", t.GetTaskId()))
		return
	}
	isNew, err := a.journal.Accept(assignmentFromProto(t))
	if err != nil {
		// Not acknowledged: the server sends it again on the next session.
		a.log.Error("cannot journal task", zap.String("task", t.GetTaskId()), zap.Error(err))
		return
	}
	select {
	case out <- &tentaclev1.ConnectRequest{Msg: &tentaclev1.ConnectRequest_TaskAccepted{TaskAccepted: &tentaclev1.TaskAccepted{TaskId: t.GetTaskId()}}}:
	case <-ctx.Done():
	}
	if isNew {
		a.start(taskCtx, t.GetTaskId())
	}
}

func assignmentFromProto(t *tentaclev1.TaskAssignment) journal.Assignment {
	a := journal.Assignment{
		TaskID: t.GetTaskId(), DeploymentID: t.GetDeploymentId(), ReleaseID: t.GetReleaseId(),
		ReleaseVersion: t.GetReleaseVersion(), Application: t.GetApplication(),
		ImageRepository: t.GetImageRepository(), ImageTag: t.GetImageTag(), ImageDigest: t.GetImageDigest(),
		SensitiveEnv: t.GetSensitiveEnv(),
	}
	a.RunSpec = specpb.FromProto(t.GetRunSpec())
	return a
}

var protoStates = map[string]tentaclev1.TaskState{
	statePulling: tentaclev1.TaskState_TASK_STATE_PULLING, stateStarting: tentaclev1.TaskState_TASK_STATE_STARTING,
	stateVerifying: tentaclev1.TaskState_TASK_STATE_VERIFYING, stateSucceeded: tentaclev1.TaskState_TASK_STATE_SUCCEEDED,
	stateFailed: tentaclev1.TaskState_TASK_STATE_FAILED, stateCancelled: tentaclev1.TaskState_TASK_STATE_CANCELLED,
}

var protoFailures = map[string]tentaclev1.FailureKind{
	"image_unauthorized": tentaclev1.FailureKind_FAILURE_KIND_IMAGE_UNAUTHORIZED, "image_not_found": tentaclev1.FailureKind_FAILURE_KIND_IMAGE_NOT_FOUND,
	"registry_unreachable": tentaclev1.FailureKind_FAILURE_KIND_REGISTRY_UNREACHABLE, "container_exited": tentaclev1.FailureKind_FAILURE_KIND_CONTAINER_EXITED,
	"docker": tentaclev1.FailureKind_FAILURE_KIND_DOCKER, "agent": tentaclev1.FailureKind_FAILURE_KIND_AGENT,
	"unhealthy": tentaclev1.FailureKind_FAILURE_KIND_UNHEALTHY, "health_timeout": tentaclev1.FailureKind_FAILURE_KIND_HEALTH_TIMEOUT,
	"interrupted": tentaclev1.FailureKind_FAILURE_KIND_INTERRUPTED, "target_unavailable": tentaclev1.FailureKind_FAILURE_KIND_TARGET_UNAVAILABLE,
}

func eventToProto(taskID string, e journal.Event) *tentaclev1.TaskEvent {
	return &tentaclev1.TaskEvent{
		TaskId: taskID, Sequence: e.Seq, State: protoStates[e.State], Message: e.Message,
		ImageDigest: e.ImageDigest, ContainerId: e.ContainerID, FailureKind: protoFailures[e.FailureKind],
		LogBytes: uint64(e.LogBytes), OccurredAt: timestamppb.New(e.At),
		ProgressBytes: uint64(max(e.ProgressBytes, 0)), ProgressTotalBytes: uint64(max(e.ProgressTotal, 0)),
	}
}
