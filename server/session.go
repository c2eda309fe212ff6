package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
	"github.com/tentacle-deploy/tentacle/server/store"
)

// lastSeenPrecision is how stale a connected target's stored last-seen
// time may be.
const lastSeenPrecision = time.Minute

// sessions maps each connected target to its one live session.
type sessions struct {
	mu       sync.Mutex
	byTarget map[string]*session // target id → session
}

func newSessions() *sessions { return &sessions{byTarget: map[string]*session{}} }

// put registers s and returns the session it replaces, if any.
func (ss *sessions) put(s *session) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	old := ss.byTarget[s.target.ID]
	ss.byTarget[s.target.ID] = s
	return old
}

// remove unregisters s unless a newer session already replaced it.
func (ss *sessions) remove(s *session) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.byTarget[s.target.ID] == s {
		delete(ss.byTarget, s.target.ID)
	}
}

// get returns the target's live session, if any.
func (ss *sessions) get(targetID string) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.byTarget[targetID]
}

func (ss *sessions) connected(targetID string) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.byTarget[targetID] != nil
}

// kick wakes the target's session to send its pending tasks; an offline
// target gets them when it connects.
func (ss *sessions) kick(targetID string) {
	ss.mu.Lock()
	s := ss.byTarget[targetID]
	ss.mu.Unlock()
	if s != nil {
		s.kick()
	}
}

// cancel tells the target's agent, if connected, to stop the task; an
// offline agent is told when it returns (see session.cancelHeld).
func (ss *sessions) cancel(targetID, taskID, reason string) {
	if s := ss.get(targetID); s != nil {
		s.send(cancelMsg(taskID, reason))
	}
}

func cancelMsg(taskID, reason string) *tentaclev1.ConnectResponse {
	return &tentaclev1.ConnectResponse{Msg: &tentaclev1.ConnectResponse_Cancel{Cancel: &tentaclev1.Cancel{TaskId: taskID, Reason: reason}}}
}

// reconnectAll asks every live session's agent to reconnect later with m,
// and ends the session once m is sent.
func (ss *sessions) reconnectAll(m *tentaclev1.ConnectResponse) {
	for _, s := range ss.all() {
		s.reconnect(m)
	}
}

// waitEmpty waits until no session is left, or d has passed; it reports
// how many are left.
func (ss *sessions) waitEmpty(d time.Duration) int {
	deadline := time.Now().Add(d)
	for {
		n := len(ss.all())
		if n == 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (ss *sessions) all() []*session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	all := make([]*session, 0, len(ss.byTarget))
	for _, s := range ss.byTarget {
		all = append(all, s)
	}
	return all
}

func (ss *sessions) closeAll() {
	for _, s := range ss.all() {
		s.close(errShuttingDown)
	}
}

// shutdownReconnect is what every session gets when the server stops: the
// agents spread their return over the next 10 seconds, when the restarted
// server (or another replica) is likely up.
var shutdownReconnect = &tentaclev1.ConnectResponse{Msg: &tentaclev1.ConnectResponse_Reconnect{Reconnect: &tentaclev1.Reconnect{
	After: durationpb.New(10 * time.Second), Reason: "server shutting down",
}}}

// session is one agent's Connect stream. Only writeLoop sends on the stream.
type session struct {
	id       string
	s        *Server
	target   store.Target
	stream   tentaclev1.AgentService_ConnectServer
	log      *zap.Logger
	instance string // the agent process's random id from Hello
	peer     string
	// lastStored is when last-seen was last written (read loop only).
	lastStored time.Time
	lastRecv   atomic.Int64 // unix nanoseconds of the last message from the agent

	out chan *tentaclev1.ConnectResponse
	// bye is the last message of the session (Reconnect): writeLoop sends
	// it and ends the session.
	bye   chan *tentaclev1.ConnectResponse
	kickc chan struct{}
	done  chan struct{}
	once  sync.Once
	err   error

	// sent holds the tasks assigned on this session (writeLoop only): a
	// new session resends everything still pending.
	sent     map[string]bool
	releases map[string]store.Release
	// held is the tasks the agent said in Hello it has journaled.
	held map[string]bool

	// unacked holds when each task sent on this session was last sent,
	// until the agent acknowledges it (TaskAccepted or any event).
	unackedMu sync.Mutex
	unacked   map[string]time.Time
}

func newSession(s *Server, t store.Target, stream tentaclev1.AgentService_ConnectServer, log *zap.Logger) *session {
	return &session{
		id: newID(), s: s, target: t, stream: stream, log: log,
		out: make(chan *tentaclev1.ConnectResponse, 64), bye: make(chan *tentaclev1.ConnectResponse, 1), kickc: make(chan struct{}, 1), done: make(chan struct{}),
		sent: map[string]bool{}, releases: map[string]store.Release{}, held: map[string]bool{}, unacked: map[string]time.Time{},
	}
}

// alive reports whether the agent spoke within d.
func (s *session) alive(d time.Duration) bool {
	select {
	case <-s.done:
		return false
	default:
	}
	return time.Since(time.Unix(0, s.lastRecv.Load())) < d
}

func (s *session) kick() {
	select {
	case s.kickc <- struct{}{}:
	default:
	}
}

func (s *session) send(m *tentaclev1.ConnectResponse) {
	select {
	case s.out <- m:
	case <-s.done:
	}
}

// reconnect sends m as the session's last message, after what is already
// queued; asked twice, the first one stands.
func (s *session) reconnect(m *tentaclev1.ConnectResponse) {
	select {
	case s.bye <- m:
	default:
	}
}

func (s *session) close(err error) {
	s.once.Do(func() {
		s.err = err
		close(s.done)
	})
}

func (s *session) writeLoop() {
	resend := time.NewTicker(s.s.resendAfter() / 2)
	defer resend.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-resend.C:
			if !s.anyAckOverdue() {
				continue
			}
			if err := s.dispatch(); err != nil {
				s.close(err)
				return
			}
		case m := <-s.out:
			if err := s.stream.Send(m); err != nil {
				s.close(fmt.Errorf("send: %w", err))
				return
			}
		case <-s.kickc:
			if err := s.dispatch(); err != nil {
				s.close(err)
				return
			}
		case m := <-s.bye:
			s.flush()
			if err := s.stream.Send(m); err != nil {
				s.close(fmt.Errorf("send: %w", err))
				return
			}
			s.close(errShuttingDown)
			return
		}
	}
}

// awaitAck notes that task id was just sent.
func (s *session) awaitAck(id string) {
	s.unackedMu.Lock()
	defer s.unackedMu.Unlock()
	s.unacked[id] = time.Now()
}

// acked notes that the agent acknowledged task id.
func (s *session) acked(id string) {
	s.unackedMu.Lock()
	defer s.unackedMu.Unlock()
	delete(s.unacked, id)
}

// ackOverdue reports whether task id was sent on this session and not
// acknowledged within the resend interval: the Assign may have been lost
// on its way (the agent journals a task before it acknowledges it, and
// answers a second Assign of a task it has with its journaled state, so a
// resend never runs a task twice).
func (s *session) ackOverdue(id string) bool {
	s.unackedMu.Lock()
	defer s.unackedMu.Unlock()
	at, ok := s.unacked[id]
	return ok && time.Since(at) >= s.s.resendAfter()
}

func (s *session) anyAckOverdue() bool {
	s.unackedMu.Lock()
	defer s.unackedMu.Unlock()
	for _, at := range s.unacked {
		if time.Since(at) >= s.s.resendAfter() {
			return true
		}
	}
	return false
}

// forgetAcksBut stops waiting for the acknowledgement of tasks no longer
// pending (acknowledged on another session, halted, or failed).
func (s *session) forgetAcksBut(pending []store.Task) {
	keep := make(map[string]bool, len(pending))
	for _, t := range pending {
		keep[t.ID] = true
	}
	s.unackedMu.Lock()
	defer s.unackedMu.Unlock()
	for id := range s.unacked {
		if !keep[id] {
			delete(s.unacked, id)
		}
	}
}

// flush sends what is queued on out (event acks, cancels) without waiting
// for more.
func (s *session) flush() {
	for {
		select {
		case m := <-s.out:
			if err := s.stream.Send(m); err != nil {
				return
			}
		default:
			return
		}
	}
}

// dispatch sends every pending task not yet sent on this session. The task
// is in the store before it is sent, so nothing is lost if the send fails.
func (s *session) dispatch() error {
	ctx := s.stream.Context()
	tasks, err := s.s.store.PendingTasksForTarget(ctx, s.target.ID)
	if err != nil {
		return fmt.Errorf("pending tasks: %w", err)
	}
	s.forgetAcksBut(tasks)
	sent := 0
	for _, t := range tasks {
		if s.sent[t.ID] && !s.ackOverdue(t.ID) {
			continue
		}
		d, err := s.s.store.GetDeployment(ctx, t.DeploymentID)
		if err != nil {
			return fmt.Errorf("task %s: %w", t.ID, err)
		}
		if !d.CancelRequestedAt.IsZero() {
			if err := s.dropCancelled(ctx, t); err != nil {
				return err
			}
			s.sent[t.ID] = true
			continue
		}
		a, err := s.assignment(ctx, t, d)
		var refused *taskRefused
		if errors.As(err, &refused) {
			// Resolving again on the next session would fail the same
			// way: the task fails here instead of blocking the target.
			if err := s.failUnsendable(ctx, t, refused.err); err != nil {
				return err
			}
			s.sent[t.ID] = true
			continue
		}
		if err != nil {
			return err
		}
		// Assigned before it is sent: a halt cancels only tasks still
		// queued, and must not cancel one the agent may be running. If the
		// task was halted or failed since it was listed, it is not sent.
		if err := s.s.store.MarkTaskAssigned(ctx, t.ID); err != nil {
			return fmt.Errorf("mark assigned: %w", err)
		}
		now, err := s.s.store.GetTask(ctx, t.ID)
		if err != nil {
			return fmt.Errorf("task %s: %w", t.ID, err)
		}
		if now.State != store.TaskAssigned {
			s.sent[t.ID] = true
			continue
		}
		if s.sent[t.ID] {
			s.log.Warn("task sent again: the agent has not acknowledged it", zap.String("task", t.ID), zap.String("deployment", t.DeploymentID))
		}
		if err := s.stream.Send(&tentaclev1.ConnectResponse{Msg: &tentaclev1.ConnectResponse_Assign{Assign: &tentaclev1.Assign{Task: a}}}); err != nil {
			return fmt.Errorf("send assign: %w", err)
		}
		s.sent[t.ID] = true
		s.awaitAck(t.ID)
		s.log.Info("task assigned", zap.String("task", t.ID), zap.String("deployment", t.DeploymentID))
		sent++
	}
	if sent > 0 {
		s.s.changes.Changed()
	}
	return nil
}

// dropCancelled handles a pending task of a deployment being cancelled: it
// is never sent again. An agent that holds it is told to stop; one that
// never received it will not report on it, so the task is cancelled here.
func (s *session) dropCancelled(ctx context.Context, t store.Task) error {
	if s.held[t.ID] {
		return s.stream.Send(cancelMsg(t.ID, "the deployment was cancelled"))
	}
	if _, err := s.s.store.AppendTaskEvent(ctx, store.TaskEvent{
		TaskID: t.ID, Sequence: t.LastEventSeq + 1, State: store.TaskCancelled,
		Message: "cancelled: the deployment was cancelled before its agent received the task", OccurredAt: time.Now().UTC(),
	}); err != nil {
		return fmt.Errorf("cancel unsent task %s: %w", t.ID, err)
	}
	s.log.Info("unsent task of a cancelled deployment cancelled", zap.String("task", t.ID), zap.String("deployment", t.DeploymentID))
	s.s.changes.Changed()
	return nil
}

// cancelHeld tells the agent, just connected, to stop the unfinished tasks
// it holds that the server cancelled (halted while on their way to it),
// failed (the deployment's deadline passed before the agent acknowledged
// them), or whose deployment was cancelled while it was away. Pending ones
// are left to dispatch.
func (s *session) cancelHeld(ctx context.Context, held []*tentaclev1.HeldTask) error {
	for _, h := range held {
		if h.GetFinished() {
			continue
		}
		t, err := s.s.store.GetTask(ctx, h.GetTaskId())
		if errors.Is(err, store.ErrNotFound) || (err == nil && t.TargetID != s.target.ID) {
			continue
		}
		if err != nil {
			return fmt.Errorf("held task %s: %w", h.GetTaskId(), err)
		}
		switch {
		case t.State == store.TaskCancelled, overdueHeld(t):
			s.send(cancelMsg(t.ID, t.Message))
			continue
		}
		switch t.State {
		case store.TaskQueued, store.TaskAssigned, store.TaskSucceeded, store.TaskFailed:
			continue
		}
		d, err := s.s.store.GetDeployment(ctx, t.DeploymentID)
		if err != nil {
			return fmt.Errorf("held task %s: %w", t.ID, err)
		}
		if !d.CancelRequestedAt.IsZero() {
			s.send(cancelMsg(t.ID, "the deployment was cancelled"))
		}
	}
	return nil
}

// taskRefused is an assignment that cannot be built for reasons other than
// the store's: the release's variables do not resolve for the target, or a
// sealed value does not open.
type taskRefused struct{ err error }

func (e *taskRefused) Error() string { return e.err.Error() }

// failUnsendable fails a pending task that cannot be sent, with the reason,
// and moves its deployment's rollout on as an agent's report would.
func (s *session) failUnsendable(ctx context.Context, t store.Task, cause error) error {
	ev := store.TaskEvent{
		TaskID: t.ID, Sequence: t.LastEventSeq + 1, State: store.TaskFailed, FailureKind: "agent",
		Message: "the server could not prepare the task: " + cause.Error(), OccurredAt: time.Now().UTC(),
	}
	isNew, err := s.s.store.AppendTaskEvent(ctx, ev)
	if err != nil {
		return fmt.Errorf("fail unsendable task %s: %w", t.ID, err)
	}
	s.log.Error("task failed before it was sent", zap.String("task", t.ID), zap.String("deployment", t.DeploymentID), zap.Error(cause))
	if isNew {
		s.s.changes.Changed()
		ended := t
		ended.State = store.TaskFailed
		if err := s.s.rollouts.advance(ctx, t.DeploymentID, &ended); err != nil {
			s.log.Error("advance rollout", zap.String("deployment", t.DeploymentID), zap.Error(err))
		}
	}
	return nil
}

func (s *session) assignment(ctx context.Context, t store.Task, d store.Deployment) (*tentaclev1.TaskAssignment, error) {
	r, ok := s.releases[d.ReleaseID]
	if !ok || r.ImageDigest == "" {
		var err error
		if r, err = s.s.store.GetReleaseByID(ctx, d.ReleaseID); err != nil {
			return nil, fmt.Errorf("task %s: %w", t.ID, err)
		}
		s.releases[d.ReleaseID] = r
	}
	// Variables are resolved for this target; the agent gets plain values
	// and the names of the sensitive ones, so that it can keep them out of
	// its own logs.
	rs, sensitive, err := s.s.resolveTaskSpec(ctx, r, s.target)
	if err != nil {
		return nil, &taskRefused{err: err}
	}
	return &tentaclev1.TaskAssignment{
		TaskId: t.ID, DeploymentId: d.ID, ReleaseId: r.ID, ReleaseVersion: r.Version, Application: r.Application,
		ImageRepository: r.ImageRepository, ImageTag: r.ImageTag, ImageDigest: r.ImageDigest,
		RunSpec: runSpecToProto(rs), SensitiveEnv: sensitive,
	}, nil
}

// readLoop handles agent messages until the stream ends, the session is
// closed, or the agent stays silent for longer than silence.
func (s *session) readLoop(ctx context.Context, silence time.Duration) error {
	msgs := make(chan *tentaclev1.ConnectRequest)
	errc := make(chan error, 1)
	go func() {
		for {
			m, err := s.stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case msgs <- m:
			case <-s.done:
				return
			}
		}
	}()
	timer := time.NewTimer(silence)
	defer timer.Stop()
	for {
		select {
		case <-s.done:
			return s.err
		case err := <-errc:
			return err
		case <-timer.C:
			return status.Errorf(codes.DeadlineExceeded, "agent silent for %s", silence)
		case m := <-msgs:
			s.lastRecv.Store(time.Now().UnixNano())
			timer.Reset(silence)
			if err := s.handle(ctx, m); err != nil {
				return err
			}
		}
	}
}

func (s *session) handle(ctx context.Context, m *tentaclev1.ConnectRequest) error {
	switch msg := m.Msg.(type) {
	case *tentaclev1.ConnectRequest_Heartbeat:
		// Heartbeats keep the session alive (readLoop); the store's
		// last-seen time only needs minute precision, so most of them
		// write nothing.
		now := time.Now().UTC()
		s.s.receiveHeartbeat(s, msg.Heartbeat, now)
		if now.Sub(s.lastStored) < lastSeenPrecision {
			return nil
		}
		s.lastStored = now
		return s.s.store.TouchTarget(ctx, s.target.ID, now)
	case *tentaclev1.ConnectRequest_TaskAccepted:
		if _, err := s.ownTask(ctx, msg.TaskAccepted.GetTaskId()); err != nil {
			return err
		}
		s.s.metrics.taskAccepted(msg.TaskAccepted.GetTaskId(), s.sentAt(msg.TaskAccepted.GetTaskId()))
		s.acked(msg.TaskAccepted.GetTaskId())
		if err := s.s.store.MarkTaskAccepted(ctx, msg.TaskAccepted.GetTaskId()); err != nil {
			return fmt.Errorf("mark accepted: %w", err)
		}
		s.s.changes.Changed()
	case *tentaclev1.ConnectRequest_TaskEvent:
		return s.handleEvent(ctx, msg.TaskEvent)
	case *tentaclev1.ConnectRequest_HealthReport:
		return s.s.receiveHealthReport(ctx, s, msg.HealthReport)
	case *tentaclev1.ConnectRequest_Hello:
		return status.Error(codes.InvalidArgument, "Hello sent twice on one session")
	}
	return nil
}

func (s *session) ownTask(ctx context.Context, id string) (store.Task, error) {
	t, err := s.s.store.GetTask(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && t.TargetID != s.target.ID) {
		return store.Task{}, status.Errorf(codes.PermissionDenied, "task %s is not assigned to target %s", id, s.target.Name)
	}
	return t, err
}

func (s *session) handleEvent(ctx context.Context, e *tentaclev1.TaskEvent) error {
	task, err := s.ownTask(ctx, e.GetTaskId())
	if err != nil {
		return err
	}
	s.acked(task.ID)
	if e.GetSequence() == 0 {
		return status.Error(codes.InvalidArgument, "task event sequence must start at 1")
	}
	ev := taskEventFromProto(e)
	m, err := s.s.taskMasker(ctx, task)
	if err != nil {
		return fmt.Errorf("task event not stored: %w", err)
	}
	ev.Message = m.String(ev.Message)
	isNew, err := s.s.store.AppendTaskEvent(ctx, ev)
	if err != nil {
		return fmt.Errorf("append task event: %w", err)
	}
	if isNew && ev.ImageDigest != "" {
		s.pinDigest(ctx, task, ev.ImageDigest)
	}
	if isNew {
		s.log.Debug("task event", zap.String("task", ev.TaskID), zap.Uint64("seq", ev.Sequence), zap.String("state", string(ev.State)))
		s.s.changes.Changed()
	}
	if isNew && !task.State.Terminal() && ev.State.Terminal() {
		s.s.metrics.taskFinished(ev)
		ended := task
		ended.State = ev.State
		// The rollout must move on even if this session ends meanwhile.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		if err := s.s.rollouts.advance(actx, task.DeploymentID, &ended); err != nil {
			s.log.Error("advance rollout", zap.String("deployment", task.DeploymentID), zap.Error(err))
		}
		cancel()
	}
	s.send(&tentaclev1.ConnectResponse{Msg: &tentaclev1.ConnectResponse_EventAck{EventAck: &tentaclev1.EventAck{
		TaskId: ev.TaskID, Sequence: ev.Sequence,
	}}})
	return nil
}

// pinDigest pins a release to the digest its first pull resolved, so every
// later deployment of the release runs the same image.
func (s *session) pinDigest(ctx context.Context, t store.Task, digest string) {
	d, err := s.s.store.GetDeployment(ctx, t.DeploymentID)
	if err != nil {
		s.log.Warn("pin digest: deployment", zap.Error(err))
		return
	}
	pinned, err := s.s.store.PinReleaseDigest(ctx, d.ReleaseID, digest)
	if err != nil {
		s.log.Warn("pin digest", zap.Error(err))
		return
	}
	if pinned != digest {
		s.log.Warn("target runs a different digest than the release is pinned to (the tag moved during the first deployment)",
			zap.String("task", t.ID), zap.String("runs", digest), zap.String("pinned", pinned))
	}
}

func eventTime(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Now().UTC()
	}
	return ts.AsTime().UTC()
}
