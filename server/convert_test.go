package server

import (
	"reflect"
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/internal/spec"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
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
