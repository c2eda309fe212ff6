package agent

import (
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tentacle-deploy/tentacle/agent/journal"
	"github.com/tentacle-deploy/tentacle/internal/spec"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// TestAssignmentCarriesTheWholeRunSpec: a run spec with every field set, as
// the server sends it, arrives in the journal complete; a field forgotten
// in the agent's conversion fails here.
func TestAssignmentCarriesTheWholeRunSpec(t *testing.T) {
	t.Parallel()
	var rs tentaclev1.RunSpec
	err := protojson.Unmarshal([]byte(`{
		"env": [{"name": "A", "value": "1"}], "command": ["serve"],
		"ports": [{"containerPort": 80, "hostPort": 8080, "protocol": "tcp", "hostIp": "127.0.0.1"}],
		"readyAfter": "3s", "stopTimeout": "7s", "restartPolicy": "on-failure", "restartMaxRetries": 4,
		"entrypoint": ["/app"], "workingDir": "/srv", "user": "1000:1000",
		"volumes": [{"source": "data", "target": "/data", "readOnly": true}],
		"networks": [{"name": "backend", "aliases": ["api"]}],
		"labels": {"team": "web"}, "memoryBytes": "268435456", "nanoCpus": "500000000",
		"healthcheck": {"command": "true", "interval": "5s", "timeout": "1s", "retries": 3},
		"stopSignal": "SIGINT", "pullPolicy": "always",
		"log": {"driver": "json-file", "options": {"max-size": "10m"}},
		"extraHosts": [{"hostname": "db", "ip": "10.0.0.5"}],
		"strategy": "start-first", "healthTimeout": "90s"}`), &rs)
	if err != nil {
		t.Fatal(err)
	}
	got := assignmentFromProto(&tentaclev1.TaskAssignment{TaskId: "t", RunSpec: &rs}).RunSpec
	v := reflect.ValueOf(got)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Errorf("run spec field %s is lost on the way to the agent", v.Type().Field(i).Name)
		}
	}
	want := spec.RunSpec{
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
		Strategy:   "start-first", HealthTimeout: 90 * time.Second,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("journaled run spec:\n got  %+v\n want %+v", got, want)
	}
}

// The names of sensitive env vars are journaled with the task, so that a
// task resumed after a restart still knows what to mask.
func TestAssignmentKeepsSensitiveEnv(t *testing.T) {
	t.Parallel()
	as := assignmentFromProto(&tentaclev1.TaskAssignment{TaskId: "t", SensitiveEnv: []string{"DB_PASSWORD"},
		RunSpec: &tentaclev1.RunSpec{Env: []*tentaclev1.EnvVar{{Name: "DB_PASSWORD", Value: "hunter22"}}}})
	dir := t.TempDir()
	j, err := journal.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Accept(as); err != nil {
		t.Fatal(err)
	}
	j, err = journal.Open(dir) // as after a restart
	if err != nil {
		t.Fatal(err)
	}
	got, ok := j.Assignment("t")
	if !ok || !reflect.DeepEqual(got.SensitiveEnv, []string{"DB_PASSWORD"}) {
		t.Errorf("journaled SensitiveEnv = %q, want [DB_PASSWORD]", got.SensitiveEnv)
	}
}
