package server

import (
	"context"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
	"github.com/tentacle-deploy/tentacle/server/store"
)

// Application states in an environment, as GetStatus reports them.
const (
	statusNone      = "none"
	statusDeploying = "deploying"
	statusFailed    = "failed"
	statusDrift     = "drift"
	statusOffline   = "offline"
	statusMissing   = "missing"
	statusHealthy   = "healthy"
)

// statusHistory bounds how many deployments of one application in one
// environment GetStatus looks back through. The newest succeeded deployment
// and each target's newest succeeded task are almost always among the few
// newest; a pair with more failures in a row than this shows no current
// version. A store query "newest succeeded deployment and task per target
// of (application, environment)" would make the bound unnecessary and save
// the ListTasks calls.
const statusHistory = 25

// statusTaskHistory bounds how many of those deployments' task lists are
// read to find each target's version: a target that has not succeeded in
// any of them (new, or failing again and again) shows none, and no longer
// costs a query per deployment on every call.
const statusTaskHistory = 8

// GetStatus is the applications × environments view. It only reads: per
// environment one targets query, per (application, environment) one bounded
// deployments query and the task lists of the newest deployments until
// every target is accounted for (usually one, at most statusTaskHistory).
func (a *admin) GetStatus(ctx context.Context, req *tentaclev1.GetStatusRequest) (*tentaclev1.GetStatusResponse, error) {
	apps, err := oneOrAll(ctx, req.GetApplication(), "application", a.s.store.GetApplication, a.s.store.ListApplications)
	if err != nil {
		return nil, err
	}
	envs, err := oneOrAll(ctx, req.GetEnvironment(), "environment", a.s.store.GetEnvironment, a.s.store.ListEnvironments)
	if err != nil {
		return nil, err
	}
	deployed, err := a.s.applicationsByTarget(ctx, "")
	if err != nil {
		return nil, err
	}
	out := &tentaclev1.GetStatusResponse{}
	for _, env := range envs {
		targets, err := a.s.store.ListTargetsInEnvironment(ctx, env.Name)
		if err != nil {
			return nil, storeErr("list targets", err)
		}
		health := make(map[string]healthVerdict, len(targets))
		for _, t := range targets {
			health[t.ID] = a.s.targetHealth(t, deployed[t.ID])
		}
		for _, app := range apps {
			st, err := a.applicationStatus(ctx, app, env.Name, withRoles(targets, app.Roles), health)
			if err != nil {
				return nil, err
			}
			out.Applications = append(out.Applications, st)
		}
	}
	return out, nil
}

// oneOrAll reads the object named by a request filter, or all of them when
// the filter is empty; an unknown name is NotFound.
func oneOrAll[T any](ctx context.Context, name, what string, get func(context.Context, string) (T, error), list func(context.Context) ([]T, error)) ([]T, error) {
	if name == "" {
		all, err := list(ctx)
		if err != nil {
			return nil, storeErr("list "+what+"s", err)
		}
		return all, nil
	}
	one, err := get(ctx, name)
	if err != nil {
		return nil, storeErr("get "+what, err)
	}
	return []T{one}, nil
}

// applicationStatus builds one cell of the view from the newest deployments
// of app in env; targets are the environment's targets with the app's
// roles, health their judged health by target id.
func (a *admin) applicationStatus(ctx context.Context, app store.Application, env string, targets []store.Target, health map[string]healthVerdict) (*tentaclev1.ApplicationStatus, error) {
	st := &tentaclev1.ApplicationStatus{Application: app.Name, Environment: env, State: statusNone}
	targetStates := make([]*tentaclev1.TargetStatus, len(targets))
	byID := make(map[string]*tentaclev1.TargetStatus, len(targets))
	for i, t := range targets {
		v := health[t.ID]
		targetStates[i] = &tentaclev1.TargetStatus{Target: t.Name, Connected: a.s.sessions.connected(t.ID), HealthState: v.State}
		for _, d := range v.Drift {
			if d.GetApplication() == app.Name {
				targetStates[i].Drift = d
			}
		}
		byID[t.ID] = targetStates[i]
	}
	st.Targets = targetStates

	deps, err := a.s.store.ListDeployments(ctx, store.DeploymentFilter{Application: app.Name, Environment: env, Limit: statusHistory})
	if err != nil {
		return nil, storeErr("list deployments", err)
	}
	if len(deps) == 0 {
		return st, nil
	}
	st.LatestDeployment = deploymentToProto(deps[0])
	for _, d := range deps {
		if d.State == store.DeploymentSucceeded {
			st.CurrentVersion = d.ReleaseVersion
			break
		}
	}

	// Walk the deployments newest first, reading tasks only until every
	// target has both its latest task state and a succeeded version.
	unresolved := len(targets)
	seenState := make(map[string]bool, len(targets))
	for _, d := range deps[:min(len(deps), statusTaskHistory)] {
		if unresolved == 0 {
			break
		}
		tasks, err := a.s.store.ListTasks(ctx, d.ID)
		if err != nil {
			return nil, storeErr("list tasks", err)
		}
		for _, t := range tasks {
			tst := byID[t.TargetID]
			if tst == nil {
				continue // revoked since, or no longer carries the roles
			}
			before := resolved(tst, seenState[t.TargetID])
			if !seenState[t.TargetID] {
				seenState[t.TargetID] = true
				tst.LastTaskState = taskStateToProto(t.State)
			}
			if tst.Version == "" && t.State == store.TaskSucceeded {
				tst.Version = d.ReleaseVersion
			}
			if !before && resolved(tst, true) {
				unresolved--
			}
		}
	}
	st.State = cellState(deps[0], st.CurrentVersion, targetStates)
	return st, nil
}

// resolved reports whether nothing older can change a target's status.
func resolved(t *tentaclev1.TargetStatus, stateKnown bool) bool {
	return stateKnown && t.Version != ""
}

// cellState decides the one word the dashboard shows, most urgent first:
// deploying, failed, drift (a container changed by hand since the last
// deployment), offline, missing, healthy. Drift comes before offline and
// missing because it is something that ran and no longer runs as
// deployed; docs/OPERATIONS.md lists the order.
func cellState(latest store.Deployment, current string, targets []*tentaclev1.TargetStatus) string {
	switch latest.State {
	case store.DeploymentRunning:
		return statusDeploying
	case store.DeploymentFailed, store.DeploymentCancelled:
		// latest is the newest deployment, so it is newer than the one
		// that made current.
		return statusFailed
	}
	for _, t := range targets {
		if t.Drift != nil {
			return statusDrift
		}
	}
	for _, t := range targets {
		if !t.Connected {
			return statusOffline
		}
	}
	for _, t := range targets {
		if t.Version != current {
			return statusMissing
		}
	}
	return statusHealthy
}
