package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"go.uber.org/zap"

	"github.com/tentacle-deploy/tentacle/internal/spec"
)

// ensureNetworks creates the user-defined networks that do not exist yet,
// with the bridge driver. A network created concurrently by another
// deployment is fine.
func (d *Deployer) ensureNetworks(ctx context.Context, nets []NetworkAttachment, log *zap.Logger) error {
	for _, n := range nets {
		_, err := d.api.NetworkInspect(ctx, n.Name, network.InspectOptions{})
		if err == nil {
			continue
		}
		if !cerrdefs.IsNotFound(err) {
			return fail(FailureDocker, "inspect network %s: %w", n.Name, err)
		}
		_, err = d.api.NetworkCreate(ctx, n.Name, network.CreateOptions{Driver: "bridge", Labels: map[string]string{LabelManaged: "true"}})
		switch {
		case err == nil:
			log.Info("created network", zap.String("network", n.Name))
		case !cerrdefs.IsConflict(err):
			return fail(FailureDocker, "create network %s: %w", n.Name, err)
		}
	}
	return nil
}

// swap is one replacement of an application's container and what has been
// done so far, so that a failure at any step undoes exactly that much.
type swap struct {
	d    *Deployer
	name string // the container's name: the Deployer's prefix and the app
	log  *zap.Logger

	oldID          string // the container named name before the swap, if any
	oldWasRunning  bool   // start it again on rollback
	oldStopped     bool
	oldAside       bool // renamed name.previous
	newID          string
	newNamed       bool // renamed name
	restart        container.RestartPolicy
	rollbackBudget time.Duration
}

// replace creates the new container and swaps it in (steps 3 to 5 of
// Deploy). It returns the new container's ID.
func (d *Deployer) replace(ctx context.Context, t Task, imageRef string, progress func(Progress), logs io.Writer, log *zap.Logger) (string, error) {
	s := &swap{d: d, name: d.prefix + t.Application, log: log,
		// Enough to stop a container and to start the old one again.
		rollbackBudget: t.runSpec().StopTimeout + time.Minute}
	if err := s.findOld(ctx); err != nil {
		return "", err
	}
	// Journaled by the agent before the container exists: after a crash,
	// a task that got this far is never deployed a second time (Reconcile).
	progress(Progress{Phase: PhaseStarting, Message: "creating container " + s.name + suffixNext})
	if err := s.create(ctx, t, imageRef); err != nil {
		return "", s.rollback(ctx, err)
	}
	swapIn := s.recreate
	if t.runSpec().Strategy == spec.StrategyStartFirst {
		swapIn = s.startFirst
	}
	if err := swapIn(ctx, t, progress, logs); err != nil {
		return "", s.rollback(ctx, err)
	}
	s.removeOld(ctx, t, progress)
	return s.newID, nil
}

// create creates the new container as name.next, on its networks.
func (s *swap) create(ctx context.Context, t Task, imageRef string) error {
	d, next := s.d, s.name+suffixNext
	cfg, hostCfg := ContainerConfig(t, imageRef)
	// Nothing is restarted during the gate, where an exit fails the
	// deployment anyway; and an engine before 22.06 may report the exit
	// code of a container it restarted as 0 (moby/moby#39352). The run
	// spec's policy is set once the gate has passed (armRestart).
	s.restart = hostCfg.RestartPolicy
	hostCfg.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyDisabled}
	nets := Networks(t)
	if err := d.ensureNetworks(ctx, nets, s.log); err != nil {
		return err
	}
	var netCfg *network.NetworkingConfig
	if len(nets) > 0 {
		netCfg = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{nets[0].Name: nets[0].Endpoint}}
	}
	created, err := d.api.ContainerCreate(ctx, cfg, hostCfg, netCfg, nil, next)
	if err != nil {
		return fail(FailureDocker, "create container %s: %w", next, err)
	}
	s.newID = created.ID
	for _, n := range nets[min(1, len(nets)):] {
		if err := d.api.NetworkConnect(ctx, n.Name, s.newID, n.Endpoint); err != nil {
			return fail(FailureDocker, "connect container %s to network %s: %w", next, n.Name, err)
		}
	}
	for _, w := range created.Warnings {
		s.log.Warn("docker warning on create", zap.String("warning", w))
	}
	return nil
}

// recreate stops the old container and sets it aside, then starts the new
// one under the application's name and holds the health gate.
func (s *swap) recreate(ctx context.Context, t Task, progress func(Progress), logs io.Writer) error {
	d := s.d
	if s.oldID != "" {
		if s.oldWasRunning {
			progress(Progress{Phase: PhaseStarting, Message: "stopping the current container " + s.name})
			timeout := stopSeconds(t.runSpec().StopTimeout)
			if err := d.api.ContainerStop(ctx, s.oldID, container.StopOptions{Timeout: timeout}); err != nil {
				return fail(FailureDocker, "stop container %s: %w", s.name, err)
			}
			s.oldStopped = true
		}
		if err := s.setOldAside(ctx); err != nil {
			return err
		}
	}
	if err := s.nameNew(ctx); err != nil {
		return err
	}
	return d.startAndVerify(ctx, t, s.newID, s.name, progress, logs, s.armRestart)
}

// startFirst starts the new container as name.next beside the old one,
// which keeps running through the health gate; only a new container that
// passed it takes the application's name.
func (s *swap) startFirst(ctx context.Context, t Task, progress func(Progress), logs io.Writer) error {
	if err := s.d.startAndVerify(ctx, t, s.newID, s.name+suffixNext, progress, logs, s.armRestart); err != nil {
		return err
	}
	// The old one is set aside (still running) before the new one takes
	// the name, so that a crash in between leaves states findOld resolves.
	if s.oldID != "" {
		if err := s.setOldAside(ctx); err != nil {
			return err
		}
	}
	return s.nameNew(ctx)
}

// armRestart gives the new container, which has passed the gate, the run
// spec's restart policy.
func (s *swap) armRestart(ctx context.Context) error {
	if s.restart.IsNone() {
		return nil
	}
	if _, err := s.d.api.ContainerUpdate(ctx, s.newID, container.UpdateConfig{RestartPolicy: s.restart}); err != nil {
		return fail(FailureDocker, "set restart policy %s on the new container: %w", s.restart.Name, err)
	}
	return nil
}

func (s *swap) setOldAside(ctx context.Context) error {
	if err := s.d.api.ContainerRename(ctx, s.oldID, s.name+suffixPrevious); err != nil {
		return fail(FailureDocker, "rename container %s to %s: %w", s.name, s.name+suffixPrevious, err)
	}
	s.oldAside = true
	return nil
}

func (s *swap) nameNew(ctx context.Context) error {
	if err := s.d.api.ContainerRename(ctx, s.newID, s.name); err != nil {
		return fail(FailureDocker, "rename container %s to %s: %w", s.name+suffixNext, s.name, err)
	}
	s.newNamed = true
	return nil
}

// removeOld removes the old container once the new one has passed the
// gate, stopping it first with its grace period if it still runs
// (start-first). The deployment has succeeded by then: a leftover old
// container is removed by the next deployment of the app (findOld), so
// this only warns.
func (s *swap) removeOld(ctx context.Context, t Task, progress func(Progress)) {
	if s.oldID == "" {
		return
	}
	d := s.d
	rctx, cancel := s.cleanupContext(ctx)
	defer cancel()
	if s.oldWasRunning && !s.oldStopped {
		progress(Progress{Phase: PhaseVerifying, Message: "stopping the previous container " + s.name + suffixPrevious})
		if err := d.api.ContainerStop(rctx, s.oldID, container.StopOptions{Timeout: stopSeconds(t.runSpec().StopTimeout)}); err != nil && !cerrdefs.IsNotFound(err) {
			s.log.Warn("stop previous container", zap.String("container", s.oldID), zap.Error(err))
		}
	}
	if err := d.api.ContainerRemove(rctx, s.oldID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		s.log.Warn("remove previous container", zap.String("container", s.oldID), zap.Error(err))
	}
}

// findOld finds the container to replace and clears what an attempt that
// crashed left behind. The states a crash can leave, by strategy:
//
//	recreate:    "<app>.next" created, old "<app>" untouched
//	             old stopped and renamed "<app>.previous", "<app>.next" not renamed
//	             new renamed "<app>", "<app>.previous" not yet removed
//	start-first: "<app>.next" running beside "<app>" (gate not passed)
//	             old renamed "<app>.previous" (still running), "<app>.next" passed
//	             new renamed "<app>", "<app>.previous" (running) not yet removed
//
// They are resolved by these rules, in order:
//   - "<app>.next" is a new container that never took the name: removed
//     (with start-first it may have passed its gate, but its task was not
//     reported as succeeded, so the old one is the one to keep);
//   - "<app>.previous" with "<app>" present is superseded by "<app>", which
//     is what runs now: removed;
//   - "<app>.previous" without "<app>" was set aside just before a crash:
//     it becomes "<app>" again, and is started on rollback (a no-op when
//     start-first left it running).
//
// Only containers labelled tentacle.managed are removed; "<app>" itself may
// be one an operator created by hand, and is replaced like any other.
// "<app>" stands for the prefixed name.
func (s *swap) findOld(ctx context.Context) error {
	d := s.d
	next, err := s.inspectManaged(ctx, s.name+suffixNext)
	if err != nil {
		return err
	}
	if next != nil {
		s.log.Info("removing container left by an interrupted deployment", zap.String("container", next.Name))
		if err := d.api.ContainerRemove(ctx, next.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return fail(FailureDocker, "remove leftover container %s: %w", s.name+suffixNext, err)
		}
	}
	prev, err := s.inspectManaged(ctx, s.name+suffixPrevious)
	if err != nil {
		return err
	}
	cur, err := d.inspectName(ctx, s.name)
	if err != nil {
		return err
	}
	switch {
	case prev != nil && cur != nil:
		s.log.Info("removing container left by an interrupted deployment", zap.String("container", prev.Name))
		if err := d.api.ContainerRemove(ctx, prev.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return fail(FailureDocker, "remove leftover container %s: %w", s.name+suffixPrevious, err)
		}
	case prev != nil:
		s.log.Info("restoring container set aside by an interrupted deployment", zap.String("container", prev.Name))
		if err := d.api.ContainerRename(ctx, prev.ID, s.name); err != nil {
			return fail(FailureDocker, "rename leftover container %s back to %s: %w", s.name+suffixPrevious, s.name, err)
		}
		s.oldID = prev.ID
		// It was stopped by the interrupted swap (recreate), not by anyone
		// who wanted it down, so a rollback brings it back up even if this
		// attempt fails before it gets to stop it. Start-first left it
		// running.
		s.oldWasRunning = true
		s.oldStopped = prev.State == nil || !(prev.State.Running || prev.State.Restarting)
		return nil
	}
	if cur != nil {
		s.oldID = cur.ID
		s.oldWasRunning = cur.State != nil && (cur.State.Running || cur.State.Restarting)
	}
	return nil
}

// inspectName returns the container with exactly this name, or nil.
func (d *Deployer) inspectName(ctx context.Context, name string) (*container.InspectResponse, error) {
	c, err := d.api.ContainerInspect(ctx, name)
	if cerrdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fail(FailureDocker, "inspect container %s: %w", name, err)
	}
	// The engine also resolves ID prefixes: "abc" can find a container
	// whose ID starts with abc when none is named so.
	if c.ContainerJSONBase == nil || c.Name != "/"+name {
		return nil, nil
	}
	return &c, nil
}

// inspectManaged is inspectName for names only the agent uses: it refuses
// to touch such a container that the agent did not create.
func (s *swap) inspectManaged(ctx context.Context, name string) (*container.InspectResponse, error) {
	c, err := s.d.inspectName(ctx, name)
	if err != nil || c == nil {
		return c, err
	}
	if c.Config == nil || c.Config.Labels[LabelManaged] != "true" {
		return nil, fail(FailureAgent, "container %s exists and was not created by tentacle: rename or remove it, the agent needs the name to swap %s", name, s.name)
	}
	return c, nil
}

// rollback undoes the swap so far and returns cause, with what could not
// be undone appended. It runs on a context of its own: it must also work
// when ctx is what was cancelled.
func (s *swap) rollback(ctx context.Context, cause error) error {
	rctx, cancel := s.cleanupContext(ctx)
	defer cancel()
	d := s.d
	var errs []error
	if s.newID != "" {
		if err := d.api.ContainerRemove(rctx, s.newID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove new container: %w", err))
		}
	}
	if s.oldAside {
		if err := d.api.ContainerRename(rctx, s.oldID, s.name); err != nil {
			errs = append(errs, fmt.Errorf("rename %s back to %s: %w", s.name+suffixPrevious, s.name, err))
		}
	}
	if s.oldStopped && s.oldWasRunning {
		if err := d.api.ContainerStart(rctx, s.oldID, container.StartOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("start previous container again: %w", err))
		}
	}
	if len(errs) == 0 {
		if s.oldID != "" {
			s.log.Info("rolled back to the previous container", zap.String("container", s.oldID))
		}
		return cause
	}
	s.log.Error("rollback incomplete", zap.Error(errors.Join(errs...)))
	kind := KindOf(cause)
	return &Failure{Kind: kind, Err: fmt.Errorf("%w; rollback incomplete: %w", cause, errors.Join(errs...))}
}

func (s *swap) cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.rollbackBudget)
}
