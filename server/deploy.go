package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
	"github.com/tentacle-deploy/tentacle/server/store"
)

// This file creates deployments (deploy, deploy --missing, rollback, and
// auto-deploy when a target joins) and cancels them.

// newDeployment is what a deployment is created from.
type newDeployment struct {
	release store.Release
	env     store.Environment
	targets []store.Target
	rollout store.Rollout
	// deadline is how long tasks may wait for their targets; 0: the
	// server's default.
	deadline time.Duration
	kind     string
	by       string
	// skipped names the targets left out for having no session.
	skipped []string
	// unavailable are targets whose tasks fail at creation for having no
	// session (unavailable targets: fail); they are among targets.
	unavailable map[string]bool
}

// createDeployment writes the deployment and one task per target in one
// transaction, targets in name order and in waves of the rollout's window:
// the first wave queued, the others waiting. It then wakes the first
// wave's sessions. A target whose run spec does not resolve refuses the
// whole deployment.
func (s *Server) createDeployment(ctx context.Context, n newDeployment) (store.Deployment, []store.Task, error) {
	targets := slices.SortedFunc(slices.Values(n.targets), func(x, y store.Target) int { return strings.Compare(x.Name, y.Name) })
	for _, t := range targets {
		if _, _, err := s.resolveTaskSpec(ctx, n.release, t); err != nil {
			return store.Deployment{}, nil, status.Error(codes.FailedPrecondition, err.Error())
		}
	}
	now := time.Now().UTC()
	d := store.Deployment{
		ID: newID(), ReleaseID: n.release.ID, Application: n.release.Application, ReleaseVersion: n.release.Version,
		Environment: n.env.Name, State: store.DeploymentRunning, CreatedBy: n.by, CreatedAt: now,
		Rollout: n.rollout, Kind: n.kind, DeadlineAt: s.deadlineAt(now, n.deadline), SkippedTargets: n.skipped,
	}
	// Under the halt policy a task failed at creation halts the
	// deployment as any failed task would: the others are created halted
	// (rollouts.halt's message), so none is ever sent.
	halt := ""
	if n.rollout.FailurePolicy != store.FailureContinue {
		for _, t := range targets {
			if n.unavailable[t.ID] {
				halt = fmt.Sprintf("halted: task on %s failed", t.Name)
				break
			}
		}
	}
	tasks := make([]store.Task, 0, len(targets))
	var failed *store.Task
	for i, t := range targets {
		wave, state := waveOf(i, n.rollout.Window), store.TaskQueued
		if wave > 1 {
			state = store.TaskWaiting
		}
		task := store.Task{ID: newID(), DeploymentID: d.ID, TargetID: t.ID, TargetName: t.Name,
			State: state, Wave: wave, FinalLogBytes: -1, CreatedAt: now, UpdatedAt: now}
		switch {
		case n.unavailable[t.ID]:
			task.State, task.FailureKind = store.TaskFailed, "target_unavailable"
			task.Message = fmt.Sprintf("target %s has no session (agent stopped, host down or link cut): failed at once, as the deployment asked (unavailable targets: fail)", t.Name)
		case halt != "":
			task.State, task.FailureKind, task.Message = store.TaskCancelled, "halted", halt
		}
		tasks = append(tasks, task)
		if task.State == store.TaskFailed && failed == nil {
			failed = &tasks[len(tasks)-1]
		}
	}
	if err := s.store.CreateDeployment(ctx, d, tasks); err != nil {
		return store.Deployment{}, nil, storeErr("create deployment", err)
	}
	if failed != nil {
		// The store ended the deployment if every task has; under the
		// continue policy a rolling one may have its next wave to start.
		ended := *failed
		if err := s.rollouts.advance(ctx, d.ID, &ended); err != nil {
			return store.Deployment{}, nil, storeErr("advance rollout", err)
		}
		var err error
		if d, err = s.store.GetDeployment(ctx, d.ID); err != nil {
			return store.Deployment{}, nil, storeErr("get deployment", err)
		}
		if tasks, err = s.store.ListTasks(ctx, d.ID); err != nil {
			return store.Deployment{}, nil, storeErr("list tasks", err)
		}
	}
	s.log.Info("deployment queued", zap.String("deployment", d.ID), zap.String("kind", d.Kind), zap.String("app", d.Application),
		zap.String("release", d.ReleaseVersion), zap.String("environment", d.Environment), zap.Int("tasks", len(tasks)),
		zap.Int("waves", waveOf(len(tasks)-1, n.rollout.Window)), zap.String("by", d.CreatedBy),
		zap.Strings("skipped_targets", n.skipped), zap.Int("failed_unavailable", len(n.unavailable)))
	s.countDeploymentCreated(d.Kind)
	for _, t := range tasks {
		if t.State == store.TaskQueued {
			s.sessions.kick(t.TargetID)
		}
	}
	s.changes.Changed()
	return d, tasks, nil
}

func (a *admin) CreateDeployment(ctx context.Context, req *tentaclev1.CreateDeploymentRequest) (*tentaclev1.CreateDeploymentResponse, error) {
	for field, v := range map[string]string{"application": req.GetApplication(), "release_version": req.GetReleaseVersion(), "environment": req.GetEnvironment()} {
		if v == "" {
			return nil, invalid(fmt.Errorf("%s: required", field))
		}
	}
	override, err := rolloutFromProto("rollout", req.GetRollout())
	if err != nil {
		return nil, invalid(err)
	}
	deadline, err := deadlineFromProto("deadline", req.GetDeadline())
	if err != nil {
		return nil, invalid(err)
	}
	rel, err := a.s.store.GetRelease(ctx, req.GetApplication(), req.GetReleaseVersion())
	if err != nil {
		return nil, storeErr("get release", err)
	}
	env, err := a.s.store.GetEnvironment(ctx, req.GetEnvironment())
	if err != nil {
		return nil, storeErr("get environment", err)
	}
	if err := a.checkLifecycle(ctx, rel, env, req.GetForce()); err != nil {
		return nil, err
	}
	app, err := a.s.store.GetApplication(ctx, rel.Application)
	if err != nil {
		return nil, storeErr("get application", err)
	}
	targets, err := a.s.deployTargets(ctx, env, app)
	if err != nil {
		return nil, err
	}
	kind := store.KindDeploy
	if req.GetMissingOnly() {
		kind = store.KindMissing
		if targets, err = a.s.withoutRelease(ctx, targets, rel, env); err != nil {
			return nil, err
		}
		if len(targets) == 0 {
			return nil, status.Errorf(codes.FailedPrecondition, "nothing to deploy: every target of %s already runs %s %s", env.Name, app.Name, rel.Version)
		}
	}
	n := newDeployment{release: rel, env: env, rollout: app.Rollout, deadline: deadline, kind: kind, by: principalFrom(ctx).Name}
	if n.targets, n.skipped, n.unavailable, err = a.s.applyUnavailable(req.GetUnavailableTargets(), targets, env, app); err != nil {
		return nil, err
	}
	if req.GetRollout() != nil {
		n.rollout = override
	}
	if err := a.s.checkDeadlineFitsRollout(deadline, n.rollout, len(n.targets)); err != nil {
		return nil, err
	}
	d, tasks, err := a.s.createDeployment(ctx, n)
	if err != nil {
		return nil, err
	}
	return &tentaclev1.CreateDeploymentResponse{Deployment: deploymentToProto(d), Tasks: tasksToProto(tasks)}, nil
}

// deployTargets lists the environment's targets (not revoked) that carry
// the application's roles; none is an error that says how to enroll one.
func (s *Server) deployTargets(ctx context.Context, env store.Environment, app store.Application) ([]store.Target, error) {
	targets, err := s.store.ListTargetsInEnvironment(ctx, env.Name)
	if err != nil {
		return nil, storeErr("list targets", err)
	}
	if len(targets) == 0 {
		return nil, status.Errorf(codes.FailedPrecondition, "environment %q has no targets: enroll one with `tentaclectl token create --env %s` and `tentacle enroll`", env.Name, env.Name)
	}
	if targets = withRoles(targets, app.Roles); len(targets) == 0 {
		roles := strings.Join(app.Roles, ",")
		return nil, status.Errorf(codes.FailedPrecondition, "environment %q has no target with the roles of %q (%s): enroll one with `tentaclectl token create --env %s --roles %s`",
			env.Name, app.Name, roles, env.Name, roles)
	}
	return targets, nil
}

// applyUnavailable applies the request's policy for targets without a
// session: WAIT (unspecified) keeps them, their tasks queued until they
// return or the deadline passes; SKIP leaves them out (and refuses a
// deployment left with no target); FAIL keeps them, marked to fail at
// once. It returns the targets to give tasks to, the names skipped, and
// the ids to fail.
func (s *Server) applyUnavailable(policy tentaclev1.UnavailableTargets, targets []store.Target, env store.Environment, app store.Application) ([]store.Target, []string, map[string]bool, error) {
	switch policy {
	case tentaclev1.UnavailableTargets_UNAVAILABLE_TARGETS_UNSPECIFIED, tentaclev1.UnavailableTargets_UNAVAILABLE_TARGETS_WAIT:
		return targets, nil, nil, nil
	case tentaclev1.UnavailableTargets_UNAVAILABLE_TARGETS_SKIP, tentaclev1.UnavailableTargets_UNAVAILABLE_TARGETS_FAIL:
	default:
		return nil, nil, nil, invalid(fmt.Errorf("unavailable_targets: %d is not a policy: use WAIT, SKIP or FAIL", policy))
	}
	var available []store.Target
	var names []string
	ids := map[string]bool{}
	for _, t := range targets {
		if s.sessions.connected(t.ID) {
			available = append(available, t)
			continue
		}
		names = append(names, t.Name)
		ids[t.ID] = true
	}
	if policy == tentaclev1.UnavailableTargets_UNAVAILABLE_TARGETS_FAIL {
		return targets, nil, ids, nil
	}
	if len(available) == 0 {
		return nil, nil, nil, status.Errorf(codes.FailedPrecondition, "no target of %s for %s has a session (unavailable: %s): nothing to deploy with --unavailable skip; start their agents, or use --unavailable wait to queue the tasks until they return",
			env.Name, app.Name, strings.Join(names, ", "))
	}
	return available, names, nil, nil
}

// withoutRelease keeps the targets that have no succeeded task of the
// release in the environment, and those where the application drifted:
// its container was stopped, removed or replaced since it was deployed.
func (s *Server) withoutRelease(ctx context.Context, targets []store.Target, rel store.Release, env store.Environment) ([]store.Target, error) {
	deployed, err := s.applicationsByTarget(ctx, "")
	if err != nil {
		return nil, err
	}
	drifted := map[string]bool{}
	for _, t := range targets {
		for _, d := range s.targetHealth(t, deployed[t.ID]).Drift {
			if d.GetApplication() == rel.Application {
				drifted[t.ID] = true
			}
		}
	}
	ds, err := s.store.ListDeployments(ctx, store.DeploymentFilter{Application: rel.Application, Environment: env.Name})
	if err != nil {
		return nil, storeErr("list deployments", err)
	}
	runs := map[string]bool{}
	for _, d := range ds {
		if d.ReleaseID != rel.ID {
			continue
		}
		tasks, err := s.store.ListTasks(ctx, d.ID)
		if err != nil {
			return nil, storeErr("list tasks", err)
		}
		for _, t := range tasks {
			if t.State == store.TaskSucceeded {
				runs[t.TargetID] = true
			}
		}
	}
	return slices.DeleteFunc(targets, func(t store.Target) bool { return runs[t.ID] && !drifted[t.ID] }), nil
}

// withRoles keeps the targets that carry every one of roles.
func withRoles(targets []store.Target, roles []string) []store.Target {
	var out []store.Target
	for _, t := range targets {
		if hasAll(t.Roles, roles) {
			out = append(out, t)
		}
	}
	return out
}

func hasAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// checkLifecycle refuses a release in an environment before it succeeded
// in the previous one, unless an admin forces it. A release that already
// succeeded in the environment may always come back (a rollback).
func (a *admin) checkLifecycle(ctx context.Context, rel store.Release, env store.Environment, force bool) error {
	prev, ok, err := a.s.store.PreviousEnvironment(ctx, env.Name)
	if err != nil {
		return storeErr("previous environment", err)
	}
	if !ok {
		return nil
	}
	done, err := a.s.store.ReleaseSucceededIn(ctx, rel.ID, prev.Name)
	if err == nil && !done {
		done, err = a.s.store.ReleaseSucceededIn(ctx, rel.ID, env.Name)
	}
	if err != nil {
		return storeErr("release history", err)
	}
	switch {
	case done:
		return nil
	case !force:
		return status.Errorf(codes.FailedPrecondition, "release %q of %q has not succeeded in %q, the environment before %q: deploy it there first, or pass --force (role admin)",
			rel.Version, rel.Application, prev.Name, env.Name)
	case principalFrom(ctx).Role != RoleAdmin:
		return status.Errorf(codes.PermissionDenied, "--force needs role admin: role %s deploys along the lifecycle only", principalFrom(ctx).Role)
	}
	a.s.log.Warn("lifecycle skipped by force", zap.String("app", rel.Application), zap.String("release", rel.Version),
		zap.String("environment", env.Name), zap.String("skipped", prev.Name), zap.String("by", principalFrom(ctx).Name))
	return nil
}

// succeededReleases lists the IDs of the releases of app that succeeded in
// env, newest deployment first, each once: the first is the current one.
func (s *Server) succeededReleases(ctx context.Context, app, env string) ([]string, error) {
	ds, err := s.store.ListDeployments(ctx, store.DeploymentFilter{Application: app, Environment: env})
	if err != nil {
		return nil, storeErr("list deployments", err)
	}
	var ids []string
	for _, d := range ds {
		if d.State == store.DeploymentSucceeded && !slices.Contains(ids, d.ReleaseID) {
			ids = append(ids, d.ReleaseID)
		}
	}
	return ids, nil
}

// Rollback deploys again the release that succeeded in the environment
// before the current one (the release of the newest succeeded deployment).
func (a *admin) Rollback(ctx context.Context, req *tentaclev1.RollbackRequest) (*tentaclev1.RollbackResponse, error) {
	for field, v := range map[string]string{"application": req.GetApplication(), "environment": req.GetEnvironment()} {
		if v == "" {
			return nil, invalid(fmt.Errorf("%s: required", field))
		}
	}
	override, err := rolloutFromProto("rollout", req.GetRollout())
	if err != nil {
		return nil, invalid(err)
	}
	app, err := a.s.store.GetApplication(ctx, req.GetApplication())
	if err != nil {
		return nil, storeErr("get application", err)
	}
	env, err := a.s.store.GetEnvironment(ctx, req.GetEnvironment())
	if err != nil {
		return nil, storeErr("get environment", err)
	}
	ids, err := a.s.succeededReleases(ctx, app.Name, env.Name)
	if err != nil {
		return nil, err
	}
	switch len(ids) {
	case 0:
		return nil, status.Errorf(codes.FailedPrecondition, "nothing to roll back to: %s has no succeeded deployment in %s", app.Name, env.Name)
	case 1:
		cur, err := a.s.store.GetReleaseByID(ctx, ids[0])
		if err != nil {
			return nil, storeErr("get release", err)
		}
		return nil, status.Errorf(codes.FailedPrecondition, "nothing to roll back to: %s %s is the only release that succeeded in %s", app.Name, cur.Version, env.Name)
	}
	cur, err := a.s.store.GetReleaseByID(ctx, ids[0])
	if err != nil {
		return nil, storeErr("get release", err)
	}
	prev, err := a.s.store.GetReleaseByID(ctx, ids[1])
	if err != nil {
		return nil, storeErr("get release", err)
	}
	// No lifecycle check: a deployment of prev succeeded here, so the
	// release has been through whatever admitted it to this environment.
	targets, err := a.s.deployTargets(ctx, env, app)
	if err != nil {
		return nil, err
	}
	rollout := app.Rollout
	if req.GetRollout() != nil {
		rollout = override
	}
	d, tasks, err := a.s.createDeployment(ctx, newDeployment{release: prev, env: env, targets: targets, rollout: rollout,
		kind: store.KindRollback, by: principalFrom(ctx).Name})
	if err != nil {
		return nil, err
	}
	return &tentaclev1.RollbackResponse{Deployment: deploymentToProto(d), Tasks: tasksToProto(tasks), FromVersion: cur.Version}, nil
}

// CancelDeployment cancels the tasks not yet sent and tells the agents
// running the others to stop (and restore the old container); the
// deployment ends cancelled once every task has ended.
func (a *admin) CancelDeployment(ctx context.Context, req *tentaclev1.CancelDeploymentRequest) (*tentaclev1.CancelDeploymentResponse, error) {
	if req.GetId() == "" {
		return nil, invalid(errors.New("id: required"))
	}
	d, err := a.s.store.RequestCancelDeployment(ctx, req.GetId(), time.Now().UTC())
	if err != nil {
		return nil, storeErr("cancel deployment", err)
	}
	if d.State != store.DeploymentRunning {
		return nil, status.Errorf(codes.FailedPrecondition, "deployment %s has already finished (%s): there is nothing to cancel", d.ID, d.State)
	}
	by := principalFrom(ctx).Name
	reason := "cancelled by " + by
	halted, err := a.s.store.HaltDeployment(ctx, d.ID, reason)
	if err != nil {
		return nil, storeErr("cancel deployment", err)
	}
	a.s.rollouts.forget(d.ID)
	tasks, err := a.s.store.ListTasks(ctx, d.ID)
	if err != nil {
		return nil, storeErr("list tasks", err)
	}
	// Halted tasks too: one may have been on its way to its agent (an
	// agent ignores a Cancel for a task it does not hold).
	for _, t := range halted {
		a.s.sessions.cancel(t.TargetID, t.ID, reason)
	}
	running := 0
	for _, t := range tasks {
		if !t.State.Terminal() {
			a.s.sessions.cancel(t.TargetID, t.ID, reason)
			running++
		}
	}
	a.s.log.Info("deployment cancel requested", zap.String("deployment", d.ID), zap.Int("halted", len(halted)),
		zap.Int("running", running), zap.String("by", by))
	a.s.changes.Changed()
	if d, err = a.s.store.GetDeployment(ctx, d.ID); err != nil {
		return nil, storeErr("get deployment", err)
	}
	return &tentaclev1.CancelDeploymentResponse{Deployment: deploymentToProto(d)}, nil
}

// autoDeploy gives a target that just joined an environment with
// auto-deploy the current release there of every application whose roles
// it has. Failures are logged and audited, never returned: the enrollment
// has happened.
func (s *Server) autoDeploy(ctx context.Context, t store.Target) {
	env, err := s.store.GetEnvironment(ctx, t.Environment)
	if err != nil || !env.AutoDeploy {
		if err != nil {
			s.log.Error("auto-deploy: environment", zap.String("target", t.Name), zap.Error(err))
		}
		return
	}
	apps, err := s.store.ListApplications(ctx)
	if err != nil {
		s.log.Error("auto-deploy: applications", zap.String("target", t.Name), zap.Error(err))
		return
	}
	for _, app := range apps {
		if !hasAll(t.Roles, app.Roles) {
			continue
		}
		ids, err := s.succeededReleases(ctx, app.Name, env.Name)
		if err != nil || len(ids) == 0 {
			if err != nil {
				s.log.Error("auto-deploy: current release", zap.String("app", app.Name), zap.Error(err))
			}
			continue
		}
		object := fmt.Sprintf("application/%s→target/%s (environment/%s)", app.Name, t.Name, env.Name)
		rel, err := s.store.GetReleaseByID(ctx, ids[0])
		var d store.Deployment
		if err == nil {
			object = fmt.Sprintf("release/%s@%s→target/%s (environment/%s)", app.Name, rel.Version, t.Name, env.Name)
			d, _, err = s.createDeployment(ctx, newDeployment{release: rel, env: env, targets: []store.Target{t},
				rollout: app.Rollout, kind: store.KindAuto, by: "auto-deploy"})
		}
		if err != nil {
			s.log.Error("auto-deploy failed", zap.String("app", app.Name), zap.String("target", t.Name), zap.Error(err))
			s.audit(ctx, "auto-deploy", "CreateDeployment", object, outcome(err))
			continue
		}
		s.audit(ctx, "auto-deploy", "CreateDeployment", "deployment/"+d.ID+" ("+object+")", "ok")
	}
}
