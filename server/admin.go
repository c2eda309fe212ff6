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

	"github.com/tentacle-deploy/tentacle/internal/pki"
	"github.com/tentacle-deploy/tentacle/internal/spec"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
	"github.com/tentacle-deploy/tentacle/server/store"
)

// admin is the admin gRPC service. Every input is validated before anything
// is stored, and errors name the field and the fix.
type admin struct {
	tentaclev1.UnimplementedAdminServiceServer
	s *Server
}

func invalid(err error) error { return status.Error(codes.InvalidArgument, err.Error()) }

func (a *admin) CreateEnvironment(ctx context.Context, req *tentaclev1.CreateEnvironmentRequest) (*tentaclev1.CreateEnvironmentResponse, error) {
	if err := spec.ValidateName("name", req.GetName()); err != nil {
		return nil, invalid(err)
	}
	e := store.Environment{Name: req.GetName(), Description: req.GetDescription(), CreatedAt: time.Now().UTC()}
	if err := a.s.store.CreateEnvironment(ctx, e); err != nil {
		return nil, storeErr("create environment", err)
	}
	a.s.log.Info("environment created", zap.String("environment", e.Name), zap.String("by", principalFrom(ctx).Name))
	return &tentaclev1.CreateEnvironmentResponse{Environment: environmentToProto(e)}, nil
}

func (a *admin) ListEnvironments(ctx context.Context, _ *tentaclev1.ListEnvironmentsRequest) (*tentaclev1.ListEnvironmentsResponse, error) {
	envs, err := a.s.store.ListEnvironments(ctx)
	if err != nil {
		return nil, storeErr("list environments", err)
	}
	out := &tentaclev1.ListEnvironmentsResponse{}
	for _, e := range envs {
		out.Environments = append(out.Environments, environmentToProto(e))
	}
	return out, nil
}

func (a *admin) CreateApplication(ctx context.Context, req *tentaclev1.CreateApplicationRequest) (*tentaclev1.CreateApplicationResponse, error) {
	if err := spec.ValidateName("name", req.GetName()); err != nil {
		return nil, invalid(err)
	}
	repo, err := spec.ParseRepository(req.GetImageRepository())
	if err != nil {
		return nil, invalid(fmt.Errorf("image_repository: %w", err))
	}
	rs := runSpecFromProto(req.GetRunSpec())
	if err := rs.Validate(); err != nil {
		return nil, invalid(fmt.Errorf("run_spec: %w", err))
	}
	if err := validEnvReferences(rs.Env); err != nil {
		return nil, invalid(err)
	}
	for i, r := range req.GetRoles() {
		if err := spec.ValidateName(fmt.Sprintf("roles[%d]", i), r); err != nil {
			return nil, invalid(err)
		}
	}
	app := store.Application{Name: req.GetName(), ImageRepository: repo.String(), RunSpec: rs.WithDefaults(), Roles: req.GetRoles(), CreatedAt: time.Now().UTC()}
	if err := a.s.store.CreateApplication(ctx, app); err != nil {
		return nil, storeErr("create application", err)
	}
	a.s.log.Info("application created", zap.String("app", app.Name), zap.String("image", app.ImageRepository), zap.String("by", principalFrom(ctx).Name))
	return &tentaclev1.CreateApplicationResponse{Application: applicationToProto(app)}, nil
}

func (a *admin) ListApplications(ctx context.Context, _ *tentaclev1.ListApplicationsRequest) (*tentaclev1.ListApplicationsResponse, error) {
	apps, err := a.s.store.ListApplications(ctx)
	if err != nil {
		return nil, storeErr("list applications", err)
	}
	out := &tentaclev1.ListApplicationsResponse{}
	for _, app := range apps {
		out.Applications = append(out.Applications, applicationToProto(app))
	}
	return out, nil
}

func (a *admin) CreateRelease(ctx context.Context, req *tentaclev1.CreateReleaseRequest) (*tentaclev1.CreateReleaseResponse, error) {
	if req.GetApplication() == "" {
		return nil, invalid(errors.New("application: required"))
	}
	if err := spec.ValidateTag(req.GetImageTag()); err != nil {
		return nil, invalid(fmt.Errorf("image_tag: %w", err))
	}
	version := req.GetVersion()
	if version == "" {
		version = req.GetImageTag()
	}
	if err := spec.ValidateTag(version); err != nil {
		return nil, invalid(fmt.Errorf("version: %w", err))
	}
	if d := req.GetImageDigest(); d != "" {
		if err := spec.ValidateDigest(d); err != nil {
			return nil, invalid(fmt.Errorf("image_digest: %w", err))
		}
	}
	app, err := a.s.store.GetApplication(ctx, req.GetApplication())
	if err != nil {
		return nil, storeErr("get application", err)
	}
	if err := a.checkVariableReferences(ctx, app); err != nil {
		return nil, err
	}
	r := store.Release{
		ID: newID(), Application: app.Name, Version: version, ImageRepository: app.ImageRepository,
		ImageTag: req.GetImageTag(), ImageDigest: req.GetImageDigest(), RunSpec: app.RunSpec, CreatedAt: time.Now().UTC(),
	}
	if err := a.s.store.CreateRelease(ctx, r); err != nil {
		return nil, storeErr("create release", err)
	}
	a.s.log.Info("release created", zap.String("app", r.Application), zap.String("version", r.Version), zap.String("by", principalFrom(ctx).Name))
	// The response shows the variables the release took.
	if r, err = a.s.store.GetReleaseByID(ctx, r.ID); err != nil {
		return nil, storeErr("get release", err)
	}
	return &tentaclev1.CreateReleaseResponse{Release: releaseToProto(r)}, nil
}

func (a *admin) ListReleases(ctx context.Context, req *tentaclev1.ListReleasesRequest) (*tentaclev1.ListReleasesResponse, error) {
	rs, err := a.s.store.ListReleases(ctx, req.GetApplication())
	if err != nil {
		return nil, storeErr("list releases", err)
	}
	// By application, then highest version first as people read versions
	// (1.10.0 above 1.9.2); the store's newest-first order breaks ties.
	slices.SortStableFunc(rs, func(x, y store.Release) int {
		if c := strings.Compare(x.Application, y.Application); c != 0 {
			return c
		}
		return -spec.CompareVersions(x.Version, y.Version)
	})
	out := &tentaclev1.ListReleasesResponse{}
	for _, r := range rs {
		out.Releases = append(out.Releases, releaseToProto(r))
	}
	return out, nil
}

// CreateDeployment writes the deployment and one task per target of the
// environment in one transaction, then wakes the targets' sessions.
func (a *admin) CreateDeployment(ctx context.Context, req *tentaclev1.CreateDeploymentRequest) (*tentaclev1.CreateDeploymentResponse, error) {
	for field, v := range map[string]string{"application": req.GetApplication(), "release_version": req.GetReleaseVersion(), "environment": req.GetEnvironment()} {
		if v == "" {
			return nil, invalid(fmt.Errorf("%s: required", field))
		}
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
	targets, err := a.s.store.ListTargetsInEnvironment(ctx, env.Name)
	if err != nil {
		return nil, storeErr("list targets", err)
	}
	if len(targets) == 0 {
		return nil, status.Errorf(codes.FailedPrecondition, "environment %q has no targets: enroll one with `tentaclectl token create --env %s` and `tentacle enroll`", env.Name, env.Name)
	}
	app, err := a.s.store.GetApplication(ctx, rel.Application)
	if err != nil {
		return nil, storeErr("get application", err)
	}
	if targets = withRoles(targets, app.Roles); len(targets) == 0 {
		roles := strings.Join(app.Roles, ",")
		return nil, status.Errorf(codes.FailedPrecondition, "environment %q has no target with the roles of %q (%s): enroll one with `tentaclectl token create --env %s --roles %s`",
			env.Name, app.Name, roles, env.Name, roles)
	}
	now := time.Now().UTC()
	d := store.Deployment{
		ID: newID(), ReleaseID: rel.ID, Application: rel.Application, ReleaseVersion: rel.Version,
		Environment: env.Name, State: store.DeploymentRunning, CreatedBy: principalFrom(ctx).Name, CreatedAt: now,
	}
	tasks := make([]store.Task, 0, len(targets))
	for _, t := range targets {
		tasks = append(tasks, store.Task{ID: newID(), DeploymentID: d.ID, TargetID: t.ID, TargetName: t.Name,
			State: store.TaskQueued, FinalLogBytes: -1, CreatedAt: now, UpdatedAt: now})
	}
	if err := a.s.store.CreateDeployment(ctx, d, tasks); err != nil {
		return nil, storeErr("create deployment", err)
	}
	a.s.log.Info("deployment queued", zap.String("deployment", d.ID), zap.String("app", d.Application),
		zap.String("release", d.ReleaseVersion), zap.String("environment", d.Environment), zap.Int("tasks", len(tasks)),
		zap.String("by", d.CreatedBy))
	for _, t := range targets {
		a.s.sessions.kick(t.ID)
	}
	a.s.changes.Changed()
	return &tentaclev1.CreateDeploymentResponse{Deployment: deploymentToProto(d), Tasks: tasksToProto(tasks)}, nil
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
// in the previous one, unless an admin forces it.
func (a *admin) checkLifecycle(ctx context.Context, rel store.Release, env store.Environment, force bool) error {
	prev, ok, err := a.s.store.PreviousEnvironment(ctx, env.Name)
	if err != nil {
		return storeErr("previous environment", err)
	}
	if !ok {
		return nil
	}
	done, err := a.s.store.ReleaseSucceededIn(ctx, rel.ID, prev.Name)
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

func (a *admin) ListDeployments(ctx context.Context, req *tentaclev1.ListDeploymentsRequest) (*tentaclev1.ListDeploymentsResponse, error) {
	if req.GetLimit() < 0 {
		return nil, invalid(errors.New("limit: must not be negative"))
	}
	ds, err := a.s.store.ListDeployments(ctx, store.DeploymentFilter{Application: req.GetApplication(), Environment: req.GetEnvironment(), Limit: int(req.GetLimit())})
	if err != nil {
		return nil, storeErr("list deployments", err)
	}
	out := &tentaclev1.ListDeploymentsResponse{}
	for _, d := range ds {
		out.Deployments = append(out.Deployments, deploymentToProto(d))
	}
	return out, nil
}

func (a *admin) GetDeployment(ctx context.Context, req *tentaclev1.GetDeploymentRequest) (*tentaclev1.GetDeploymentResponse, error) {
	d, tasks, err := a.deployment(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return &tentaclev1.GetDeploymentResponse{Deployment: deploymentToProto(d), Tasks: tasksToProto(tasks)}, nil
}

func (a *admin) deployment(ctx context.Context, id string) (store.Deployment, []store.Task, error) {
	if id == "" {
		return store.Deployment{}, nil, invalid(errors.New("id: required"))
	}
	d, err := a.s.store.GetDeployment(ctx, id)
	if err != nil {
		return store.Deployment{}, nil, storeErr("get deployment", err)
	}
	tasks, err := a.s.store.ListTasks(ctx, id)
	if err != nil {
		return store.Deployment{}, nil, storeErr("list tasks", err)
	}
	return d, tasks, nil
}

// pollInterval bounds how long a watcher waits when no wake-up comes (a
// change made by another replica, later).
const pollInterval = time.Second

func (a *admin) WatchDeployment(req *tentaclev1.WatchDeploymentRequest, stream tentaclev1.AdminService_WatchDeploymentServer) error {
	ctx := stream.Context()
	var lastEvent int64
	first := true
	for {
		wake := a.s.changes.Wait()
		d, tasks, err := a.deployment(ctx, req.GetId())
		if err != nil {
			return err
		}
		events, err := a.s.store.ListDeploymentEvents(ctx, d.ID, lastEvent)
		if err != nil {
			return storeErr("list events", err)
		}
		if first || len(events) > 0 || d.State != store.DeploymentRunning {
			resp := &tentaclev1.WatchDeploymentResponse{Deployment: deploymentToProto(d), Tasks: tasksToProto(tasks)}
			for _, e := range events {
				resp.Events = append(resp.Events, taskEventToProto(e))
				lastEvent = e.ID
			}
			if err := stream.Send(resp); err != nil {
				return err
			}
			first = false
		}
		if d.State != store.DeploymentRunning {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-a.s.stopping:
			return errShuttingDown
		case <-wake:
		case <-time.After(pollInterval):
		}
	}
}

func (a *admin) ListTasks(ctx context.Context, req *tentaclev1.ListTasksRequest) (*tentaclev1.ListTasksResponse, error) {
	tasks, err := a.s.store.ListTasks(ctx, req.GetDeploymentId())
	if err != nil {
		return nil, storeErr("list tasks", err)
	}
	return &tentaclev1.ListTasksResponse{Tasks: tasksToProto(tasks)}, nil
}

const logChunk = 64 << 10

// ReadTaskLog streams the log from an offset. With follow it ends once the
// task has finished and the server holds the log's final length.
func (a *admin) ReadTaskLog(req *tentaclev1.ReadTaskLogRequest, stream tentaclev1.AdminService_ReadTaskLogServer) error {
	ctx := stream.Context()
	if req.GetTaskId() == "" {
		return invalid(errors.New("task_id: required"))
	}
	off := req.GetOffset()
	for {
		wake := a.s.changes.Wait()
		task, err := a.s.store.GetTask(ctx, req.GetTaskId())
		if err != nil {
			return storeErr("get task", err)
		}
		for {
			data, err := a.s.store.ReadTaskLog(ctx, task.ID, off, logChunk)
			if err != nil {
				return storeErr("read task log", err)
			}
			if len(data) == 0 {
				break
			}
			if err := stream.Send(&tentaclev1.ReadTaskLogResponse{Offset: off, Data: data}); err != nil {
				return err
			}
			off += uint64(len(data))
		}
		complete := task.State.Terminal() && (task.FinalLogBytes < 0 || off >= uint64(task.FinalLogBytes))
		if !req.GetFollow() || complete {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-a.s.stopping:
			return errShuttingDown
		case <-wake:
		case <-time.After(pollInterval):
		}
	}
}

func (a *admin) ListTargets(ctx context.Context, _ *tentaclev1.ListTargetsRequest) (*tentaclev1.ListTargetsResponse, error) {
	targets, err := a.s.store.ListTargets(ctx)
	if err != nil {
		return nil, storeErr("list targets", err)
	}
	out := &tentaclev1.ListTargetsResponse{}
	for _, t := range targets {
		out.Targets = append(out.Targets, a.targetToProto(t))
	}
	return out, nil
}

func (a *admin) CreateJoinToken(ctx context.Context, req *tentaclev1.CreateJoinTokenRequest) (*tentaclev1.CreateJoinTokenResponse, error) {
	ttl := time.Hour
	if req.GetTtl() != nil {
		ttl = req.GetTtl().AsDuration()
	}
	if ttl <= 0 || ttl > 30*24*time.Hour {
		return nil, invalid(fmt.Errorf("ttl: %s out of range: use more than 0 and at most 720h", ttl))
	}
	uses := int(req.GetUses())
	if uses == 0 {
		uses = 1
	}
	if uses < 0 || uses > 10000 {
		return nil, invalid(fmt.Errorf("uses: %d out of range 1-10000", uses))
	}
	for i, r := range req.GetRoles() {
		if err := spec.ValidateName(fmt.Sprintf("roles[%d]", i), r); err != nil {
			return nil, invalid(err)
		}
	}
	tok, exp, err := a.s.CreateJoinToken(ctx, req.GetEnvironment(), req.GetRoles(), ttl, uses, principalFrom(ctx).Name)
	if err != nil {
		return nil, err
	}
	return &tentaclev1.CreateJoinTokenResponse{Token: tok.String(), TokenId: tok.ID, CaHash: tok.CAHash, ExpiresAt: ts(exp)}, nil
}

// CreateJoinToken stores a join token for an environment and returns it;
// only the secret's hash is stored.
func (s *Server) CreateJoinToken(ctx context.Context, env string, roles []string, ttl time.Duration, uses int, by string) (pki.JoinToken, time.Time, error) {
	if err := spec.ValidateName("environment", env); err != nil {
		return pki.JoinToken{}, time.Time{}, invalid(err)
	}
	tok, err := pki.NewJoinToken(s.ca.Hash())
	if err != nil {
		return pki.JoinToken{}, time.Time{}, status.Errorf(codes.Internal, "new join token: %v", err)
	}
	now := time.Now().UTC()
	jt := store.JoinToken{ID: tok.ID, SecretHash: pki.HashSecret(tok.Secret), Environment: env, Roles: roles,
		ExpiresAt: now.Add(ttl), UsesAllowed: uses, CreatedBy: by, CreatedAt: now}
	if err := s.store.CreateJoinToken(ctx, jt); err != nil {
		return pki.JoinToken{}, time.Time{}, storeErr("create join token", err)
	}
	s.log.Info("join token created", zap.String("token_id", tok.ID), zap.String("environment", env),
		zap.Strings("roles", roles), zap.Int("uses", uses), zap.Time("expires", jt.ExpiresAt), zap.String("by", by))
	return tok, jt.ExpiresAt, nil
}
