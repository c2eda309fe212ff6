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
	if err := validRequiredTargets(req.GetRequiredTargets()); err != nil {
		return nil, invalid(err)
	}
	e := store.Environment{Name: req.GetName(), Description: req.GetDescription(), CreatedAt: time.Now().UTC(),
		AutoDeploy: req.GetAutoDeploy(), RequiredTargets: int(req.GetRequiredTargets())}
	if err := a.s.store.CreateEnvironment(ctx, e); err != nil {
		return nil, storeErr("create environment", err)
	}
	// Read back for the lifecycle position.
	e, err := a.s.store.GetEnvironment(ctx, e.Name)
	if err != nil {
		return nil, storeErr("get environment", err)
	}
	a.s.log.Info("environment created", zap.String("environment", e.Name), zap.Bool("auto_deploy", e.AutoDeploy),
		zap.Int("required_targets", e.RequiredTargets), zap.String("by", principalFrom(ctx).Name))
	return &tentaclev1.CreateEnvironmentResponse{Environment: environmentToProto(e)}, nil
}

func validRequiredTargets(n int32) error {
	if n < 0 {
		return fmt.Errorf("required_targets: %d is negative: use 0 (every target) or the number of targets that must succeed", n)
	}
	return nil
}

// UpdateEnvironment changes the fields the request sets.
func (a *admin) UpdateEnvironment(ctx context.Context, req *tentaclev1.UpdateEnvironmentRequest) (*tentaclev1.UpdateEnvironmentResponse, error) {
	if req.GetName() == "" {
		return nil, invalid(errors.New("name: required"))
	}
	var u store.EnvironmentUpdate
	if req.Description != nil {
		u.Description = req.Description
	}
	if req.AutoDeploy != nil {
		u.AutoDeploy = req.AutoDeploy
	}
	if req.RequiredTargets != nil {
		if err := validRequiredTargets(req.GetRequiredTargets()); err != nil {
			return nil, invalid(err)
		}
		n := int(req.GetRequiredTargets())
		u.RequiredTargets = &n
	}
	if u == (store.EnvironmentUpdate{}) {
		return nil, invalid(errors.New("nothing to update: set description, auto_deploy or required_targets"))
	}
	e, err := a.s.store.UpdateEnvironment(ctx, req.GetName(), u)
	if err != nil {
		return nil, storeErr("update environment", err)
	}
	a.s.log.Info("environment updated", zap.String("environment", e.Name), zap.Bool("auto_deploy", e.AutoDeploy),
		zap.Int("required_targets", e.RequiredTargets), zap.String("by", principalFrom(ctx).Name))
	return &tentaclev1.UpdateEnvironmentResponse{Environment: environmentToProto(e)}, nil
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
	rollout, err := rolloutFromProto("rollout", req.GetRollout())
	if err != nil {
		return nil, invalid(err)
	}
	app := store.Application{Name: req.GetName(), ImageRepository: repo.String(), RunSpec: rs.WithDefaults(), Roles: req.GetRoles(),
		Rollout: rollout, CreatedAt: time.Now().UTC()}
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
	var lastTasks string
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
		// Tasks also change without events of their own: a wave starts, a
		// halt or a cancel ends the tasks that were waiting.
		taskSig := tasksSignature(tasks)
		if first || len(events) > 0 || taskSig != lastTasks || d.State != store.DeploymentRunning {
			lastTasks = taskSig
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

// tasksSignature changes whenever a task's state, message or progress does.
func tasksSignature(tasks []store.Task) string {
	var b strings.Builder
	for _, t := range tasks {
		fmt.Fprintf(&b, "%s:%s:%d:%d;", t.ID, t.State, t.UpdatedAt.UnixNano(), t.ProgressBytes)
	}
	return b.String()
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
	apps, err := a.s.applicationsByTarget(ctx, "")
	if err != nil {
		return nil, err
	}
	out := &tentaclev1.ListTargetsResponse{}
	for _, t := range targets {
		p := a.targetToProto(t)
		v := a.s.targetHealth(t, apps[t.ID])
		p.HealthState, p.HealthReasons = v.State, v.Reasons
		out.Targets = append(out.Targets, p)
	}
	return out, nil
}

// findTarget finds a target by name, or else by id; NotFound names it.
func (a *admin) findTarget(ctx context.Context, nameOrID string) (store.Target, error) {
	t, err := a.s.store.GetTargetByName(ctx, nameOrID)
	if errors.Is(err, store.ErrNotFound) {
		t, err = a.s.store.GetTarget(ctx, nameOrID)
	}
	if errors.Is(err, store.ErrNotFound) {
		return t, status.Errorf(codes.NotFound, "target %q: not found: tentaclectl targets lists them", nameOrID)
	}
	if err != nil {
		return t, storeErr("get target", err)
	}
	return t, nil
}

// GetTarget is one target, by name or id, with its health in detail.
func (a *admin) GetTarget(ctx context.Context, req *tentaclev1.GetTargetRequest) (*tentaclev1.GetTargetResponse, error) {
	if req.GetTarget() == "" {
		return nil, invalid(errors.New("target: required: give its name or id (see tentaclectl targets)"))
	}
	t, err := a.findTarget(ctx, req.GetTarget())
	if err != nil {
		return nil, err
	}
	apps, err := a.s.applicationsByTarget(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	p := a.targetToProto(t)
	v := a.s.targetHealth(t, apps[t.ID])
	p.HealthState, p.HealthReasons, p.Health = v.State, v.Reasons, a.s.targetHealthDetail(t, v)
	return &tentaclev1.GetTargetResponse{Target: p}, nil
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
