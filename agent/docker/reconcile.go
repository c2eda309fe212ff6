package docker

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"go.uber.org/zap"
)

// ErrNotCreated is Reconcile's answer when no container of the task
// exists: the task never got to create one, or what it created was
// removed again.
var ErrNotCreated = errors.New("no container of the task exists")

// ErrEngineUnreachable is in the error of a Reconcile that gave up waiting
// for the Docker engine (its ctx ended): the task's state is unknown.
var ErrEngineUnreachable = errors.New("the docker engine is not reachable")

// engineRetry is the longest wait between attempts to reach an engine that
// is not up yet (the host is booting).
const engineRetry = 5 * time.Second

// Reconcile settles a task that was running when the agent stopped
// without reporting its outcome (a crash, a kill, a power cut), from the
// containers labelled with the task's id. It never creates a container.
//
//   - "<app>.next": the swap had not finished. It is removed and the
//     previous container is restored, running if the task had stopped it;
//     the error is a *Failure of kind interrupted.
//   - "<app>": the new container had taken the name. The health gate is
//     resumed on it (started first if the crash came before its start; the
//     time it has run counts towards the ready period and health limit):
//     on success the run spec's restart policy is set, "<app>.previous" is
//     removed and the Result is returned; on failure the new container is
//     removed and "<app>.previous", if any, is restored.
//   - none: a container set aside as "<app>.previous" without an "<app>"
//     is restored, and the error is ErrNotCreated. The caller decides
//     whether the task may still run (it had not reached the create step)
//     or must be reported as interrupted.
//
// Result.Digest is set whenever a container of the task was found.
func (d *Deployer) Reconcile(ctx context.Context, t Task, progress func(Progress), logs io.Writer) (Result, error) {
	progress, logs = orDiscard(progress, logs)
	if _, err := t.validate(); err != nil {
		return Result{}, &Failure{Kind: FailureAgent, Err: err}
	}
	log := d.taskLog(t)
	unlock, err := d.lockApp(ctx, t.Application)
	if err != nil {
		return Result{}, fail(FailureAgent, "reconcile %s: waiting for the previous deployment of the same application: %w", t.Application, err)
	}
	defer unlock()

	s := &swap{d: d, name: d.prefix + t.Application, log: log, rollbackBudget: t.runSpec().StopTimeout + time.Minute}
	_, hostCfg := ContainerConfig(t, "")
	s.restart = hostCfg.RestartPolicy
	list, err := d.taskContainers(ctx, t)
	if err != nil {
		return Result{}, err
	}
	var next, named *container.Summary
	for i, c := range list {
		switch {
		case hasName(c, s.name+suffixNext):
			next = &list[i]
		case hasName(c, s.name):
			named = &list[i]
		case hasName(c, s.name+suffixPrevious):
			return Result{Digest: imageDigest(c.Image)}, fail(FailureInterrupted,
				"the agent restarted during the task; its container %s is in a state the agent does not resume and was left as it is: remove it, then deploy again", s.name+suffixPrevious)
		}
		// Any other name is another agent's (container_prefix) or an
		// operator's copy: not this agent's to touch.
	}
	switch {
	case named != nil:
		return s.resume(ctx, t, named.ID, progress, logs)
	case next != nil:
		res := Result{Digest: imageDigest(next.Image)}
		err := s.undo(ctx, time.Unix(next.Created, 0))
		if err == nil {
			err = fail(FailureInterrupted, "the agent restarted during the task and rolled it back: %s", s.whatRuns())
		}
		return res, s.rollback(ctx, err)
	default:
		if err := s.undo(ctx, time.Time{}); err != nil {
			return Result{}, s.rollback(ctx, err)
		}
		// rollback returns its cause unchanged when it undid everything.
		if err := s.rollback(ctx, ErrNotCreated); err != ErrNotCreated {
			return Result{}, fail(FailureDocker, "restore the previous container of %s: %v", s.name, err)
		}
		return Result{}, ErrNotCreated
	}
}

// taskContainers lists the containers labelled with the task, waiting for
// an engine that does not answer yet: after a reboot the agent may start
// before Docker, and the task's outcome must come from what Docker holds.
func (d *Deployer) taskContainers(ctx context.Context, t Task) ([]container.Summary, error) {
	opts := container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", LabelTask+"="+t.ID), filters.Arg("label", LabelApp+"="+t.Application))}
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, engineRetry) {
		list, err := d.api.ContainerList(ctx, opts)
		switch {
		case err == nil:
			return list, nil
		case !client.IsErrConnectionFailed(err):
			return nil, fail(FailureDocker, "list the containers of task %s: %w", t.ID, err)
		}
		d.log.Warn("docker engine not reachable; waiting for it to settle an interrupted task", zap.String("task", t.ID), zap.Error(err))
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, fail(FailureDocker, "settle task %s: %w: %w", t.ID, ErrEngineUnreachable, ctx.Err())
		case <-timer.C:
		}
	}
}

// undo clears an unfinished swap with findOld's rules. The previous
// container is also started again when it stopped after since (when the
// task's new container was created): the task stopped it, not its owner.
func (s *swap) undo(ctx context.Context, since time.Time) error {
	if err := s.findOld(ctx); err != nil {
		return err
	}
	if s.oldID == "" || s.oldWasRunning || since.IsZero() {
		return nil
	}
	c, err := s.d.api.ContainerInspect(ctx, s.oldID)
	if err != nil {
		return fail(FailureDocker, "inspect container %s: %w", s.name, err)
	}
	if c.State == nil {
		return nil
	}
	// Created has a resolution of one second.
	if at, err := time.Parse(time.RFC3339Nano, c.State.FinishedAt); err == nil && !at.Before(since) {
		s.oldWasRunning, s.oldStopped = true, true
	}
	return nil
}

// resume holds the gate of the task's container, which already has the
// application's name, and finishes the swap either way.
func (s *swap) resume(ctx context.Context, t Task, id string, progress func(Progress), logs io.Writer) (Result, error) {
	d := s.d
	c, err := d.api.ContainerInspect(ctx, id)
	if err != nil {
		return Result{}, fail(FailureDocker, "inspect container %s: %w", s.name, err)
	}
	res := Result{ContainerID: c.ID}
	if c.Config != nil {
		res.Digest = imageDigest(c.Config.Image)
	}
	s.newID, s.newNamed = c.ID, true
	prev, err := s.inspectManaged(ctx, s.name+suffixPrevious)
	if err != nil {
		return res, err
	}
	if prev != nil {
		// Set aside by this task: it ran before the task stopped it
		// (recreate), or still runs (start-first).
		s.oldID, s.oldAside, s.oldWasRunning = prev.ID, true, true
		s.oldStopped = prev.State == nil || !(prev.State.Running || prev.State.Restarting)
	}
	progress(Progress{Phase: PhaseVerifying, Message: "the agent restarted during the task: resuming the health gate of " + s.name})
	started := c.State != nil && c.State.Status != container.StateCreated
	if err := d.verify(ctx, t, c.ID, s.name, !started, progress, logs, s.armRestart); err != nil {
		return res, s.rollback(ctx, err)
	}
	s.removeOld(ctx, t, progress)
	return res, nil
}

// whatRuns says what the application runs after a rollback.
func (s *swap) whatRuns() string {
	if s.oldID == "" {
		return "there was no previous container, so " + s.name + " does not run"
	}
	return s.name + " runs its previous container again"
}

func hasName(c container.Summary, name string) bool {
	for _, n := range c.Names {
		if n == "/"+name {
			return true
		}
	}
	return false
}

// imageDigest is the digest in an image reference "repo@sha256:…", or "".
func imageDigest(ref string) string {
	if _, digest, ok := strings.Cut(ref, "@"); ok {
		return digest
	}
	return ""
}
