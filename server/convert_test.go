package server

import (
	"reflect"
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/internal/spec"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
	"github.com/tentacle-deploy/tentacle/server/store"
)

// TestRunSpecSurvivesTheWire: every run spec field set, through proto and
// back, comes out equal; a field missed in either direction fails here.
func TestRunSpecSurvivesTheWire(t *testing.T) {
	t.Parallel()
	full := spec.RunSpec{
		Env:           []spec.EnvVar{{Name: "A", Value: "1"}},
		Command:       []string{"serve", "--port", "80"},
		Ports:         []spec.Port{{ContainerPort: 80, HostPort: 8080, Protocol: "tcp", HostIP: "127.0.0.1"}},
		ReadyAfter:    3 * time.Second,
		StopTimeout:   7 * time.Second,
		RestartPolicy: "on-failure", RestartMaxRetries: 4,
		Entrypoint: []string{"/app"}, WorkingDir: "/srv", User: "1000:1000",
		Volumes:     []spec.Volume{{Source: "data", Target: "/data"}, {Source: "/etc/app", Target: "/etc/app", ReadOnly: true}},
		Networks:    []spec.Network{{Name: "backend", Aliases: []string{"api"}}},
		Labels:      map[string]string{"team": "web"},
		MemoryBytes: 256 << 20, NanoCPUs: 500_000_000,
		Healthcheck: &spec.Healthcheck{Command: "curl -f localhost", Interval: 5 * time.Second, Timeout: time.Second, Retries: 3},
		StopSignal:  "SIGINT", PullPolicy: "always",
		Log:        spec.LogConfig{Driver: "json-file", Options: map[string]string{"max-size": "10m"}},
		ExtraHosts: []spec.ExtraHost{{Name: "db", IP: "10.0.0.5"}},
		Strategy:   spec.StrategyStartFirst, HealthTimeout: time.Minute,
	}
	// Every field must be set, or the test proves nothing about it.
	v := reflect.ValueOf(full)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("test spec leaves %s unset", v.Type().Field(i).Name)
		}
	}
	if got := runSpecFromProto(runSpecToProto(full)); !reflect.DeepEqual(got, full) {
		t.Fatalf("after the round trip:\n got  %+v\n want %+v", got, full)
	}
}

// TestRolloutFieldsSurviveConversion: the fields added for rollouts reach
// the API (and pull progress the store) in both directions they travel.
func TestRolloutFieldsSurviveConversion(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	ev := taskEventFromProto(&tentaclev1.TaskEvent{TaskId: "k1", Sequence: 3, State: tentaclev1.TaskState_TASK_STATE_PULLING,
		ProgressBytes: 40, ProgressTotalBytes: 100})
	if ev.ProgressBytes != 40 || ev.ProgressTotalBytes != 100 || ev.State != store.TaskPulling {
		t.Errorf("event from proto: %+v", ev)
	}
	task := taskToProto(store.Task{ID: "k1", State: store.TaskWaiting, Wave: 2, ProgressBytes: 40, ProgressTotalBytes: 100,
		FailureKind: "halted"})
	if task.GetWave() != 2 || task.GetProgressBytes() != 40 || task.GetProgressTotalBytes() != 100 ||
		task.GetState() != tentaclev1.TaskState_TASK_STATE_WAITING || task.GetFailureKind() != tentaclev1.FailureKind_FAILURE_KIND_HALTED {
		t.Errorf("task to proto: %v", task)
	}
	r := store.Rollout{Window: 2, Pause: time.Minute, FailurePolicy: store.FailureContinue}
	d := deploymentToProto(store.Deployment{ID: "d1", State: store.DeploymentCancelled, Rollout: r, Kind: store.KindRollback, CancelRequestedAt: at})
	if d.GetState() != tentaclev1.DeploymentState_DEPLOYMENT_STATE_CANCELLED || d.GetKind() != "rollback" ||
		!d.GetCancelRequestedAt().AsTime().Equal(at) {
		t.Errorf("deployment to proto: %v", d)
	}
	if back, err := rolloutFromProto("rollout", d.GetRollout()); err != nil || back != r {
		t.Errorf("rollout round trip: %+v, %v; want %+v", back, err, r)
	}
	e := environmentToProto(store.Environment{Name: "prod", AutoDeploy: true, RequiredTargets: 3})
	if !e.GetAutoDeploy() || e.GetRequiredTargets() != 3 {
		t.Errorf("environment to proto: %v", e)
	}
	if a := applicationToProto(store.Application{Name: "web", Rollout: r}); a.GetRollout().GetWindow() != 2 {
		t.Errorf("application to proto: %v", a)
	}
}

// Every failure kind the protocol knows is stored under a name and sent
// back as the same kind; one missing here would reach the store as "".
func TestEveryFailureKindHasAName(t *testing.T) {
	t.Parallel()
	for v, name := range tentaclev1.FailureKind_name {
		k := tentaclev1.FailureKind(v)
		if k == tentaclev1.FailureKind_FAILURE_KIND_UNSPECIFIED {
			continue
		}
		s := failureKindFromProto(k)
		if s == "" || failureKindToProto(s) != k {
			t.Errorf("%s: stored as %q, which converts back to %v", name, s, failureKindToProto(s))
		}
	}
}
