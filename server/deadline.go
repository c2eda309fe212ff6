package server

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tentacle-deploy/tentacle/server/store"
)

// overdueCheckInterval is how often the server fails the tasks of
// deployments past their deadline: one indexed query over the running
// deployments, so a short interval costs little and keeps the failure
// close to the deadline a user set.
const overdueCheckInterval = 2 * time.Second

// deadlineFromProto validates a request's deadline; nil is the server's
// default. Errors name the field.
func deadlineFromProto(field string, p *durationpb.Duration) (time.Duration, error) {
	if p == nil {
		return 0, nil
	}
	if err := p.CheckValid(); err != nil {
		return 0, fmt.Errorf("%s: %v", field, err)
	}
	d := p.AsDuration()
	if d < time.Second || d > maxDeadline {
		return 0, fmt.Errorf("%s: %s out of range: use 1s to 168h (7 days), or leave it unset for the server's default", field, d)
	}
	return d, nil
}

// deadlineAt is when a deployment created at now with the requested
// deadline (0: the server's default) gives up on its unreached targets.
func (s *Server) deadlineAt(now time.Time, requested time.Duration) time.Time {
	if requested <= 0 {
		requested = s.cfg.DeploymentDeadline
	}
	return now.Add(requested)
}

// checkDeadlineFitsRollout refuses a deadline that passes before the
// rollout's pauses alone would let its last wave start: every task of the
// later waves would fail unreached.
func (s *Server) checkDeadlineFitsRollout(requested time.Duration, r store.Rollout, targets int) error {
	if requested <= 0 {
		requested = s.cfg.DeploymentDeadline
	}
	waves := waveOf(targets-1, r.Window)
	pauses := time.Duration(waves-1) * r.Pause
	if waves < 2 || pauses < requested {
		return nil
	}
	return status.Errorf(codes.FailedPrecondition, "deadline: %s passes before the last of %d waves can start (%s pause between waves): pass a --deadline longer than %s, or a shorter --pause",
		requested, waves, r.Pause, pauses)
}

// failOverdueTasks runs until ctx ends, failing the tasks whose deployment
// passed its deadline before their target took them.
func (s *Server) failOverdueTasks(ctx context.Context) {
	tick := time.NewTicker(overdueCheckInterval)
	defer tick.Stop()
	for {
		s.failOverdueOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// failOverdueOnce fails the overdue tasks, tells their agents (a task sent
// but not yet acknowledged may be on its way: the agent drops it or, if it
// started, stops and restores the old container), and moves each
// deployment's rollout on as an agent's failure report would.
func (s *Server) failOverdueOnce(ctx context.Context) {
	failed, err := s.store.FailOverdueTasks(ctx, time.Now().UTC())
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("fail overdue tasks", zap.Error(err))
		}
		return
	}
	if len(failed) == 0 {
		return
	}
	advanced := map[string]bool{}
	for _, t := range failed {
		s.log.Warn("task failed: deadline passed", zap.String("task", t.ID), zap.String("deployment", t.DeploymentID),
			zap.String("target", t.TargetName), zap.String("reason", t.Message))
		s.sessions.cancel(t.TargetID, t.ID, t.Message)
		if advanced[t.DeploymentID] {
			continue
		}
		advanced[t.DeploymentID] = true
		ended := t
		if err := s.rollouts.advance(ctx, t.DeploymentID, &ended); err != nil && ctx.Err() == nil {
			s.log.Error("advance rollout", zap.String("deployment", t.DeploymentID), zap.Error(err))
		}
	}
	s.changes.Changed()
}

// overdueHeld reports whether a task an agent holds was failed by the
// server because its deadline passed: the agent must not run it.
func overdueHeld(t store.Task) bool {
	return t.State == store.TaskFailed && t.FailureKind == "target_unavailable"
}
