package server

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tentacle-deploy/tentacle/internal/spec"
	"github.com/tentacle-deploy/tentacle/internal/specpb"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
	"github.com/tentacle-deploy/tentacle/server/store"
)

// Conversions between store types and protobuf; protobuf stops here.

func runSpecToProto(s spec.RunSpec) *tentaclev1.RunSpec { return specpb.ToProto(s) }

func runSpecFromProto(p *tentaclev1.RunSpec) spec.RunSpec { return specpb.FromProto(p) }

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

var taskStates = map[store.TaskState]tentaclev1.TaskState{
	store.TaskWaiting:   tentaclev1.TaskState_TASK_STATE_WAITING,
	store.TaskQueued:    tentaclev1.TaskState_TASK_STATE_QUEUED,
	store.TaskAssigned:  tentaclev1.TaskState_TASK_STATE_ASSIGNED,
	store.TaskAccepted:  tentaclev1.TaskState_TASK_STATE_ACCEPTED,
	store.TaskPulling:   tentaclev1.TaskState_TASK_STATE_PULLING,
	store.TaskStarting:  tentaclev1.TaskState_TASK_STATE_STARTING,
	store.TaskVerifying: tentaclev1.TaskState_TASK_STATE_VERIFYING,
	store.TaskSucceeded: tentaclev1.TaskState_TASK_STATE_SUCCEEDED,
	store.TaskFailed:    tentaclev1.TaskState_TASK_STATE_FAILED,
	store.TaskCancelled: tentaclev1.TaskState_TASK_STATE_CANCELLED,
}

func taskStateToProto(s store.TaskState) tentaclev1.TaskState { return taskStates[s] }

func taskStateFromProto(p tentaclev1.TaskState) store.TaskState {
	for k, v := range taskStates {
		if v == p {
			return k
		}
	}
	return ""
}

var failureKinds = map[string]tentaclev1.FailureKind{
	"image_unauthorized":   tentaclev1.FailureKind_FAILURE_KIND_IMAGE_UNAUTHORIZED,
	"image_not_found":      tentaclev1.FailureKind_FAILURE_KIND_IMAGE_NOT_FOUND,
	"registry_unreachable": tentaclev1.FailureKind_FAILURE_KIND_REGISTRY_UNREACHABLE,
	"container_exited":     tentaclev1.FailureKind_FAILURE_KIND_CONTAINER_EXITED,
	"docker":               tentaclev1.FailureKind_FAILURE_KIND_DOCKER,
	"agent":                tentaclev1.FailureKind_FAILURE_KIND_AGENT,
	"halted":               tentaclev1.FailureKind_FAILURE_KIND_HALTED,
	"unhealthy":            tentaclev1.FailureKind_FAILURE_KIND_UNHEALTHY,
	"health_timeout":       tentaclev1.FailureKind_FAILURE_KIND_HEALTH_TIMEOUT,
	"target_unavailable":   tentaclev1.FailureKind_FAILURE_KIND_TARGET_UNAVAILABLE,
	"interrupted":          tentaclev1.FailureKind_FAILURE_KIND_INTERRUPTED,
}

func failureKindToProto(k string) tentaclev1.FailureKind { return failureKinds[k] }

func failureKindFromProto(p tentaclev1.FailureKind) string {
	for k, v := range failureKinds {
		if v == p {
			return k
		}
	}
	return ""
}

func taskEventFromProto(e *tentaclev1.TaskEvent) store.TaskEvent {
	return store.TaskEvent{
		TaskID: e.GetTaskId(), Sequence: e.GetSequence(), State: taskStateFromProto(e.GetState()),
		Message: e.GetMessage(), ImageDigest: e.GetImageDigest(), ContainerID: e.GetContainerId(),
		FailureKind: failureKindFromProto(e.GetFailureKind()), LogBytes: int64(e.GetLogBytes()),
		ProgressBytes: e.GetProgressBytes(), ProgressTotalBytes: e.GetProgressTotalBytes(),
		OccurredAt: eventTime(e.GetOccurredAt()),
	}
}

func environmentToProto(e store.Environment) *tentaclev1.Environment {
	return &tentaclev1.Environment{Name: e.Name, Description: e.Description, CreatedAt: ts(e.CreatedAt), Position: int32(e.Position),
		AutoDeploy: e.AutoDeploy, RequiredTargets: int32(e.RequiredTargets)}
}

func applicationToProto(a store.Application) *tentaclev1.Application {
	return &tentaclev1.Application{Name: a.Name, ImageRepository: a.ImageRepository, RunSpec: runSpecToProto(a.RunSpec), Roles: a.Roles,
		CreatedAt: ts(a.CreatedAt), Rollout: rolloutToProto(a.Rollout)}
}

func releaseToProto(r store.Release) *tentaclev1.Release {
	return &tentaclev1.Release{
		Id: r.ID, Application: r.Application, Version: r.Version, ImageRepository: r.ImageRepository,
		ImageTag: r.ImageTag, ImageDigest: r.ImageDigest, RunSpec: runSpecToProto(r.RunSpec), CreatedAt: ts(r.CreatedAt),
		Variables: variablesToProto(r.Variables),
	}
}

var deploymentStates = map[store.DeploymentState]tentaclev1.DeploymentState{
	store.DeploymentRunning:   tentaclev1.DeploymentState_DEPLOYMENT_STATE_RUNNING,
	store.DeploymentSucceeded: tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED,
	store.DeploymentFailed:    tentaclev1.DeploymentState_DEPLOYMENT_STATE_FAILED,
	store.DeploymentCancelled: tentaclev1.DeploymentState_DEPLOYMENT_STATE_CANCELLED,
}

func deploymentToProto(d store.Deployment) *tentaclev1.Deployment {
	return &tentaclev1.Deployment{
		Id: d.ID, ReleaseId: d.ReleaseID, Application: d.Application, ReleaseVersion: d.ReleaseVersion,
		Environment: d.Environment, State: deploymentStates[d.State], CreatedAt: ts(d.CreatedAt),
		FinishedAt: ts(d.FinishedAt), CreatedBy: d.CreatedBy, Rollout: rolloutToProto(d.Rollout), Kind: d.Kind,
		CancelRequestedAt: ts(d.CancelRequestedAt), DeadlineAt: ts(d.DeadlineAt), SkippedTargets: d.SkippedTargets,
	}
}

func taskToProto(t store.Task) *tentaclev1.Task {
	return &tentaclev1.Task{
		Id: t.ID, DeploymentId: t.DeploymentID, TargetId: t.TargetID, TargetName: t.TargetName,
		State: taskStateToProto(t.State), Message: t.Message, FailureKind: failureKindToProto(t.FailureKind),
		ImageDigest: t.ImageDigest, CreatedAt: ts(t.CreatedAt), UpdatedAt: ts(t.UpdatedAt),
		Wave: int32(t.Wave), ProgressBytes: t.ProgressBytes, ProgressTotalBytes: t.ProgressTotalBytes,
	}
}

func tasksToProto(ts []store.Task) []*tentaclev1.Task {
	out := make([]*tentaclev1.Task, 0, len(ts))
	for _, t := range ts {
		out = append(out, taskToProto(t))
	}
	return out
}

func taskEventToProto(e store.TaskEvent) *tentaclev1.TaskEventRecord {
	return &tentaclev1.TaskEventRecord{TaskId: e.TaskID, Sequence: e.Sequence, State: taskStateToProto(e.State), Message: e.Message, OccurredAt: ts(e.OccurredAt)}
}
