package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/durationpb"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
	"github.com/tentacle-deploy/tentacle/server/store"
)

// maxPause bounds the wait between waves: a longer one is more likely a
// typo (90m for 90s) than a plan.
const maxPause = 24 * time.Hour

// rolloutFromProto validates a rollout; nil is the default (one wave, no
// pause, halt). Errors name the field.
func rolloutFromProto(field string, p *tentaclev1.Rollout) (store.Rollout, error) {
	if p == nil {
		return store.Rollout{}, nil
	}
	r := store.Rollout{Window: int(p.GetWindow()), FailurePolicy: p.GetFailurePolicy()}
	if r.Window < 0 {
		return r, fmt.Errorf("%s.window: %d is negative: use 0 (every target at once) or the number of targets per wave", field, r.Window)
	}
	if p.GetPause() != nil {
		if err := p.GetPause().CheckValid(); err != nil {
			return r, fmt.Errorf("%s.pause: %v", field, err)
		}
		r.Pause = p.GetPause().AsDuration()
	}
	if r.Pause < 0 || r.Pause > maxPause {
		return r, fmt.Errorf("%s.pause: %s out of range: use 0 to 24h", field, r.Pause)
	}
	switch r.FailurePolicy {
	case "", store.FailureHalt, store.FailureContinue:
	default:
		return r, fmt.Errorf("%s.failure_policy: %q is not a policy: use %q or %q", field, r.FailurePolicy, store.FailureHalt, store.FailureContinue)
	}
	return r, nil
}

func rolloutToProto(r store.Rollout) *tentaclev1.Rollout {
	p := &tentaclev1.Rollout{Window: int32(r.Window), FailurePolicy: r.FailurePolicy}
	if r.Pause > 0 {
		p.Pause = durationpb.New(r.Pause)
	}
	return p
}

// waveOf is the wave of the i-th target (from 0, in name order).
func waveOf(i, window int) int {
	if window <= 0 {
		return 1
	}
	return i/window + 1
}

// rollouts moves rolling deployments along: it halts them by their failure
// policy and starts each wave once the one before has ended and its pause
// has passed. Its one entry point, advance, is called when a task ends, when
// a deployment is cancelled and, for every running deployment, when the
// server starts; everything it reads is in the store, so a restart resumes
// where the last run left off, pauses included.
type rollouts struct {
	s *Server

	mu      sync.Mutex
	pending map[string]waveStart // deployment id → its next wave's timer
	stopped bool
	running sync.WaitGroup // timer callbacks in progress
}

type waveStart struct {
	wave  int
	timer *time.Timer
}

func newRollouts(s *Server) *rollouts { return &rollouts{s: s, pending: map[string]waveStart{}} }

// resume advances every running deployment; called once at start.
func (r *rollouts) resume(ctx context.Context) {
	ds, err := r.s.store.ListRunningDeployments(ctx)
	if err != nil {
		r.s.log.Error("resume rolling deployments", zap.Error(err))
		return
	}
	for _, d := range ds {
		if err := r.advance(ctx, d.ID, nil); err != nil {
			r.s.log.Error("resume deployment", zap.String("deployment", d.ID), zap.Error(err))
		}
	}
}

// advance brings a deployment's rollout up to date. ended is the task whose
// end prompted the call (its state the terminal one), or nil to look at
// every task. Every step is idempotent, so concurrent calls for one
// deployment are harmless.
func (r *rollouts) advance(ctx context.Context, deploymentID string, ended *store.Task) error {
	d, err := r.s.store.GetDeployment(ctx, deploymentID)
	if err != nil {
		return err
	}
	if d.State != store.DeploymentRunning {
		r.forget(d.ID)
		return nil
	}
	if !d.CancelRequestedAt.IsZero() {
		return r.halt(ctx, d, "cancelled: the deployment was cancelled")
	}
	halts := d.Rollout.FailurePolicy != store.FailureContinue
	if ended != nil && halts && ended.State == store.TaskFailed {
		return r.halt(ctx, d, fmt.Sprintf("halted: task on %s failed", ended.TargetName))
	}
	if ended != nil && d.Rollout.Window == 0 {
		return nil // one wave: nothing to start
	}
	tasks, err := r.s.store.ListTasks(ctx, d.ID)
	if err != nil {
		return err
	}
	if ended == nil && halts {
		for _, t := range tasks {
			if t.State == store.TaskFailed {
				return r.halt(ctx, d, fmt.Sprintf("halted: task on %s failed", t.TargetName))
			}
		}
	}
	next, endedAt, ok := nextWave(tasks)
	if !ok {
		return nil
	}
	if endedAt.IsZero() {
		endedAt = d.CreatedAt
	}
	r.schedule(d.ID, next, endedAt.Add(d.Rollout.Pause))
	return nil
}

// nextWave finds the first waiting wave once every task sent before it is
// terminal, and when the last of those ended.
func nextWave(tasks []store.Task) (wave int, lastEnd time.Time, ok bool) {
	for _, t := range tasks {
		if t.State == store.TaskWaiting {
			if wave == 0 || t.Wave < wave {
				wave = t.Wave
			}
			continue
		}
		if !t.State.Terminal() {
			return 0, time.Time{}, false
		}
		if t.UpdatedAt.After(lastEnd) {
			lastEnd = t.UpdatedAt
		}
	}
	return wave, lastEnd, wave > 0
}

// halt cancels the deployment's tasks not yet sent and tells their agents,
// in case one was being sent at that moment (an agent ignores a Cancel for
// a task it does not hold).
func (r *rollouts) halt(ctx context.Context, d store.Deployment, message string) error {
	halted, err := r.s.store.HaltDeployment(ctx, d.ID, message)
	if err != nil {
		return err
	}
	r.forget(d.ID)
	if len(halted) == 0 {
		return nil
	}
	for _, t := range halted {
		r.s.sessions.cancel(t.TargetID, t.ID, message)
	}
	r.s.log.Info("deployment halted", zap.String("deployment", d.ID), zap.String("reason", message), zap.Int("tasks", len(halted)))
	r.s.changes.Changed()
	return nil
}

// schedule starts the wave at at (at once if that has passed), unless that
// wave or a later one is already scheduled.
func (r *rollouts) schedule(deploymentID string, wave int, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	if p, ok := r.pending[deploymentID]; ok && p.wave >= wave {
		return
	}
	if p, ok := r.pending[deploymentID]; ok {
		p.timer.Stop()
	}
	wait := max(time.Until(at), 0)
	r.s.log.Info("wave scheduled", zap.String("deployment", deploymentID), zap.Int("wave", wave), zap.Duration("in", wait))
	r.pending[deploymentID] = waveStart{wave: wave, timer: time.AfterFunc(wait, func() { r.startWave(deploymentID, wave) })}
}

func (r *rollouts) startWave(deploymentID string, wave int) {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	if p, ok := r.pending[deploymentID]; ok && p.wave == wave {
		delete(r.pending, deploymentID)
	}
	r.running.Add(1)
	r.mu.Unlock()
	defer r.running.Done()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	started, err := r.s.store.StartWave(ctx, deploymentID, wave)
	if err != nil {
		// The next task end or server start tries again.
		r.s.log.Error("start wave", zap.String("deployment", deploymentID), zap.Int("wave", wave), zap.Error(err))
		return
	}
	if len(started) == 0 {
		return
	}
	r.s.log.Info("wave started", zap.String("deployment", deploymentID), zap.Int("wave", wave), zap.Int("tasks", len(started)))
	for _, t := range started {
		r.s.sessions.kick(t.TargetID)
	}
	r.s.changes.Changed()
}

// forget drops the deployment's scheduled wave, if any.
func (r *rollouts) forget(deploymentID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.pending[deploymentID]; ok {
		p.timer.Stop()
		delete(r.pending, deploymentID)
	}
}

// stop cancels every scheduled wave and waits for starts in progress; the
// next server start schedules them again from the store.
func (r *rollouts) stop() {
	r.mu.Lock()
	r.stopped = true
	for id, p := range r.pending {
		p.timer.Stop()
		delete(r.pending, id)
	}
	r.mu.Unlock()
	r.running.Wait()
}
