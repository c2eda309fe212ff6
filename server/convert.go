package server

import (
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tentacle-deploy/tentacle/internal/spec"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
	"github.com/tentacle-deploy/tentacle/server/store"
)

// Conversions between store types and protobuf; protobuf stops here.

func runSpecToProto(s spec.RunSpec) *tentaclev1.RunSpec {
	out := &tentaclev1.RunSpec{
		Command: s.Command, RestartPolicy: s.RestartPolicy,
		Entrypoint: s.Entrypoint, WorkingDir: s.WorkingDir, User: s.User,
		RestartMaxRetries: uint32(max(s.RestartMaxRetries, 0)), Labels: s.Labels,
		MemoryBytes: s.MemoryBytes, NanoCpus: s.NanoCPUs,
		StopSignal: s.StopSignal, PullPolicy: s.PullPolicy,
	}
	for _, e := range s.Env {
		out.Env = append(out.Env, &tentaclev1.EnvVar{Name: e.Name, Value: e.Value})
	}
	for _, p := range s.Ports {
		out.Ports = append(out.Ports, &tentaclev1.PortMapping{ContainerPort: p.ContainerPort, HostPort: p.HostPort, Protocol: p.Protocol, HostIp: p.HostIP})
	}
	if s.ReadyAfter > 0 {
		out.ReadyAfter = durationpb.New(s.ReadyAfter)
	}
	if s.StopTimeout > 0 {
		out.StopTimeout = durationpb.New(s.StopTimeout)
	}
	for _, v := range s.Volumes {
		out.Volumes = append(out.Volumes, &tentaclev1.VolumeMount{Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly})
	}
	for _, n := range s.Networks {
		out.Networks = append(out.Networks, &tentaclev1.NetworkAttachment{Name: n.Name, Aliases: n.Aliases})
	}
	if h := s.Healthcheck; h != nil {
		out.Healthcheck = &tentaclev1.Healthcheck{Disable: h.Disable, Command: h.Command, Retries: uint32(max(h.Retries, 0))}
		if h.Interval > 0 {
			out.Healthcheck.Interval = durationpb.New(h.Interval)
		}
		if h.Timeout > 0 {
			out.Healthcheck.Timeout = durationpb.New(h.Timeout)
		}
	}
	if s.Log.Driver != "" || len(s.Log.Options) > 0 {
		out.Log = &tentaclev1.LogConfig{Driver: s.Log.Driver, Options: s.Log.Options}
	}
	for _, h := range s.ExtraHosts {
		out.ExtraHosts = append(out.ExtraHosts, &tentaclev1.ExtraHost{Hostname: h.Name, Ip: h.IP})
	}
	return out
}

func runSpecFromProto(p *tentaclev1.RunSpec) spec.RunSpec {
	s := spec.RunSpec{
		Command: p.GetCommand(), RestartPolicy: p.GetRestartPolicy(),
		Entrypoint: p.GetEntrypoint(), WorkingDir: p.GetWorkingDir(), User: p.GetUser(),
		RestartMaxRetries: int(p.GetRestartMaxRetries()), Labels: p.GetLabels(),
		MemoryBytes: p.GetMemoryBytes(), NanoCPUs: p.GetNanoCpus(),
		StopSignal: p.GetStopSignal(), PullPolicy: p.GetPullPolicy(),
		Log: spec.LogConfig{Driver: p.GetLog().GetDriver(), Options: p.GetLog().GetOptions()},
	}
	for _, e := range p.GetEnv() {
		s.Env = append(s.Env, spec.EnvVar{Name: e.GetName(), Value: e.GetValue()})
	}
	for _, pm := range p.GetPorts() {
		s.Ports = append(s.Ports, spec.Port{ContainerPort: pm.GetContainerPort(), HostPort: pm.GetHostPort(), Protocol: pm.GetProtocol(), HostIP: pm.GetHostIp()})
	}
	if p.GetReadyAfter() != nil {
		s.ReadyAfter = p.GetReadyAfter().AsDuration()
	}
	if p.GetStopTimeout() != nil {
		s.StopTimeout = p.GetStopTimeout().AsDuration()
	}
	for _, v := range p.GetVolumes() {
		s.Volumes = append(s.Volumes, spec.Volume{Source: v.GetSource(), Target: v.GetTarget(), ReadOnly: v.GetReadOnly()})
	}
	for _, n := range p.GetNetworks() {
		s.Networks = append(s.Networks, spec.Network{Name: n.GetName(), Aliases: n.GetAliases()})
	}
	if h := p.GetHealthcheck(); h != nil {
		s.Healthcheck = &spec.Healthcheck{Disable: h.GetDisable(), Command: h.GetCommand(), Retries: int(h.GetRetries())}
		if h.GetInterval() != nil {
			s.Healthcheck.Interval = h.GetInterval().AsDuration()
		}
		if h.GetTimeout() != nil {
			s.Healthcheck.Timeout = h.GetTimeout().AsDuration()
		}
	}
	for _, h := range p.GetExtraHosts() {
		s.ExtraHosts = append(s.ExtraHosts, spec.ExtraHost{Name: h.GetHostname(), IP: h.GetIp()})
	}
	return s
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

var taskStates = map[store.TaskState]tentaclev1.TaskState{
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
		OccurredAt: eventTime(e.GetOccurredAt()),
	}
}

func environmentToProto(e store.Environment) *tentaclev1.Environment {
	return &tentaclev1.Environment{Name: e.Name, Description: e.Description, CreatedAt: ts(e.CreatedAt), Position: int32(e.Position)}
}

func applicationToProto(a store.Application) *tentaclev1.Application {
	return &tentaclev1.Application{Name: a.Name, ImageRepository: a.ImageRepository, RunSpec: runSpecToProto(a.RunSpec), Roles: a.Roles, CreatedAt: ts(a.CreatedAt)}
}

func releaseToProto(r store.Release) *tentaclev1.Release {
	return &tentaclev1.Release{
		Id: r.ID, Application: r.Application, Version: r.Version, ImageRepository: r.ImageRepository,
		ImageTag: r.ImageTag, ImageDigest: r.ImageDigest, RunSpec: runSpecToProto(r.RunSpec), CreatedAt: ts(r.CreatedAt),
	}
}

var deploymentStates = map[store.DeploymentState]tentaclev1.DeploymentState{
	store.DeploymentRunning:   tentaclev1.DeploymentState_DEPLOYMENT_STATE_RUNNING,
	store.DeploymentSucceeded: tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED,
	store.DeploymentFailed:    tentaclev1.DeploymentState_DEPLOYMENT_STATE_FAILED,
}

func deploymentToProto(d store.Deployment) *tentaclev1.Deployment {
	return &tentaclev1.Deployment{
		Id: d.ID, ReleaseId: d.ReleaseID, Application: d.Application, ReleaseVersion: d.ReleaseVersion,
		Environment: d.Environment, State: deploymentStates[d.State], CreatedAt: ts(d.CreatedAt),
		FinishedAt: ts(d.FinishedAt), CreatedBy: d.CreatedBy,
	}
}

func taskToProto(t store.Task) *tentaclev1.Task {
	return &tentaclev1.Task{
		Id: t.ID, DeploymentId: t.DeploymentID, TargetId: t.TargetID, TargetName: t.TargetName,
		State: taskStateToProto(t.State), Message: t.Message, FailureKind: failureKindToProto(t.FailureKind),
		ImageDigest: t.ImageDigest, CreatedAt: ts(t.CreatedAt), UpdatedAt: ts(t.UpdatedAt),
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
