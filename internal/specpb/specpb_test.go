package specpb

import (
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tentacle-deploy/tentacle/internal/spec"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// full has every run spec field set; a field added to spec.RunSpec or to
// the proto but forgotten in one direction of the conversion fails here.
var full = spec.RunSpec{
	Env: []spec.EnvVar{{Name: "A", Value: "1"}}, Command: []string{"serve"},
	Ports:      []spec.Port{{ContainerPort: 80, HostPort: 8080, Protocol: "tcp", HostIP: "127.0.0.1"}},
	ReadyAfter: 3 * time.Second, StopTimeout: 7 * time.Second, RestartPolicy: "on-failure", RestartMaxRetries: 4,
	Entrypoint: []string{"/app"}, WorkingDir: "/srv", User: "1000:1000",
	Volumes:  []spec.Volume{{Source: "data", Target: "/data", ReadOnly: true}},
	Networks: []spec.Network{{Name: "backend", Aliases: []string{"api"}}},
	Labels:   map[string]string{"team": "web"}, MemoryBytes: 256 << 20, NanoCPUs: 500_000_000,
	Healthcheck: &spec.Healthcheck{Command: "true", Interval: 5 * time.Second, Timeout: time.Second, Retries: 3},
	StopSignal:  "SIGINT", PullPolicy: "always",
	Log:        spec.LogConfig{Driver: "json-file", Options: map[string]string{"max-size": "10m"}},
	ExtraHosts: []spec.ExtraHost{{Name: "db", IP: "10.0.0.5"}},
	Strategy:   spec.StrategyStartFirst, HealthTimeout: 90 * time.Second,
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	v := reflect.ValueOf(full)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("test spec leaves %s unset: set it so its conversion is tested", v.Type().Field(i).Name)
		}
	}
	pb := ToProto(full)
	m := pb.ProtoReflect()
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		if !m.Has(fields.Get(i)) {
			t.Errorf("proto field %s is not filled from the Go run spec", fields.Get(i).Name())
		}
	}
	// Through the wire bytes, as the spec travels.
	data, err := proto.Marshal(pb)
	if err != nil {
		t.Fatal(err)
	}
	var back tentaclev1.RunSpec
	if err := proto.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if got := FromProto(&back); !reflect.DeepEqual(got, full) {
		t.Fatalf("round trip:\n got  %+v\n want %+v", got, full)
	}
}

func TestZeroSpec(t *testing.T) {
	t.Parallel()
	if got := FromProto(nil); !reflect.DeepEqual(got, spec.RunSpec{}) {
		t.Errorf("FromProto(nil) = %+v, want the zero spec", got)
	}
	if got := FromProto(ToProto(spec.RunSpec{})); !reflect.DeepEqual(got, spec.RunSpec{}) {
		t.Errorf("zero spec round trip = %+v", got)
	}
}
