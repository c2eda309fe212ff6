package tentaclev1_test

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// The session's hot messages, encoded and decoded as the server and the
// agent do for every task, event, log chunk and health report. Run with
// go test -bench . ./proto/tentacle/v1 (make test runs them once as
// tests, asserting nothing about speed).

// assign is an Assign with a realistic run spec: a dozen variables, two
// ports, a volume, labels, limits and a health check.
func assign() *tentaclev1.ConnectResponse {
	rs := &tentaclev1.RunSpec{
		Command:       []string{"/app/server", "--config", "/etc/app/config.yaml"},
		Ports:         []*tentaclev1.PortMapping{{ContainerPort: 8080, HostPort: 80, Protocol: "tcp"}, {ContainerPort: 9090, HostPort: 9090, Protocol: "tcp", HostIp: "127.0.0.1"}},
		ReadyAfter:    durationpb.New(10 * time.Second),
		StopTimeout:   durationpb.New(30 * time.Second),
		RestartPolicy: "unless-stopped",
		Volumes:       []*tentaclev1.VolumeMount{{Source: "app-data", Target: "/var/lib/app"}},
		Labels:        map[string]string{"team": "payments", "tier": "web", "cost-center": "cc-1234"},
		MemoryBytes:   512 << 20,
		NanoCpus:      500_000_000,
	}
	for i := range 12 {
		rs.Env = append(rs.Env, &tentaclev1.EnvVar{Name: fmt.Sprintf("APP_SETTING_%02d", i), Value: fmt.Sprintf("value-%02d-of-a-typical-length", i)})
	}
	return &tentaclev1.ConnectResponse{Msg: &tentaclev1.ConnectResponse_Assign{Assign: &tentaclev1.Assign{Task: &tentaclev1.TaskAssignment{
		TaskId: "01JDQ7ZK3V4N5P6Q7R8S9T0V1W", DeploymentId: "01JDQ7ZK3V4N5P6Q7R8S9T0V1X", ReleaseId: "01JDQ7ZK3V4N5P6Q7R8S9T0V1Y",
		ReleaseVersion: "2.14.3", Application: "payments-api", ImageRepository: "registry.example.com:5000/payments/api", ImageTag: "2.14.3",
		ImageDigest: "sha256:4f1c0e8d3b2a190817f6e5d4c3b2a190817f6e5d4c3b2a190817f6e5d4c3b2a1", RunSpec: rs,
		SensitiveEnv: []string{"APP_SETTING_03", "APP_SETTING_07"},
	}}}}
}

func taskEvent() *tentaclev1.ConnectRequest {
	return &tentaclev1.ConnectRequest{Msg: &tentaclev1.ConnectRequest_TaskEvent{TaskEvent: &tentaclev1.TaskEvent{
		TaskId: "01JDQ7ZK3V4N5P6Q7R8S9T0V1W", Sequence: 4, State: tentaclev1.TaskState_TASK_STATE_PULLING,
		Message: "pulling registry.example.com:5000/payments/api:2.14.3", OccurredAt: timestamppb.Now(),
		ProgressBytes: 48 << 20, ProgressTotalBytes: 112 << 20,
	}}}
}

func pushLogs() *tentaclev1.PushLogsRequest {
	data := make([]byte, 64<<10)
	for i := range data {
		data[i] = "0123456789abcdefghijklmnopqrstuvwxyz \n"[i%38]
	}
	return &tentaclev1.PushLogsRequest{TaskId: "01JDQ7ZK3V4N5P6Q7R8S9T0V1W", Offset: 1 << 30, Data: data}
}

func healthReport() *tentaclev1.ConnectRequest {
	r := &tentaclev1.HealthReport{Sequence: 1234, ObservedAt: timestamppb.Now(), AgentVersion: "1.4.0", AgentStartedAt: timestamppb.Now(),
		Engine: &tentaclev1.EngineHealth{Reachable: true, Version: "24.0.7", ApiVersion: "1.43", RootDir: "/var/lib/docker", DiskFreeBytes: 60 << 30, DiskTotalBytes: 100 << 30}}
	for i := range 5 {
		r.Containers = append(r.Containers, &tentaclev1.ContainerHealth{
			Application: fmt.Sprintf("app-%d", i), Name: fmt.Sprintf("tentacle-app-%d", i), ContainerId: "4f1c0e8d3b2a190817f6e5d4c3b2a190817f6e5d4c3b2a190817f6e5d4c3b2a1",
			State: "running", Health: "healthy", Image: "registry.example.com:5000/team/app:1.0." + fmt.Sprint(i),
			ImageId: "sha256:4f1c0e8d3b2a190817f6e5d4c3b2a190817f6e5d4c3b2a190817f6e5d4c3b2a1", TaskId: "01JDQ7ZK3V4N5P6Q7R8S9T0V1W",
			ReleaseId: "01JDQ7ZK3V4N5P6Q7R8S9T0V1Y", StartedAt: timestamppb.Now(),
		})
	}
	return &tentaclev1.ConnectRequest{Msg: &tentaclev1.ConnectRequest_HealthReport{HealthReport: r}}
}

var messages = []struct {
	name string
	msg  func() proto.Message
	new  func() proto.Message
}{
	{"Assign", func() proto.Message { return assign() }, func() proto.Message { return &tentaclev1.ConnectResponse{} }},
	{"TaskEvent", func() proto.Message { return taskEvent() }, func() proto.Message { return &tentaclev1.ConnectRequest{} }},
	{"PushLogs64KiB", func() proto.Message { return pushLogs() }, func() proto.Message { return &tentaclev1.PushLogsRequest{} }},
	{"HealthReport5Containers", func() proto.Message { return healthReport() }, func() proto.Message { return &tentaclev1.ConnectRequest{} }},
}

func BenchmarkEncode(b *testing.B) {
	for _, m := range messages {
		b.Run(m.name, func(b *testing.B) {
			msg := m.msg()
			b.SetBytes(int64(proto.Size(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := proto.Marshal(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, m := range messages {
		b.Run(m.name, func(b *testing.B) {
			wire, err := proto.Marshal(m.msg())
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			for b.Loop() {
				if err := proto.Unmarshal(wire, m.new()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestBenchMessagesRoundTrip keeps the benchmarks' messages honest: each
// decodes to what was encoded.
func TestBenchMessagesRoundTrip(t *testing.T) {
	for _, m := range messages {
		msg := m.msg()
		wire, err := proto.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		got := m.new()
		if err := proto.Unmarshal(wire, got); err != nil || !proto.Equal(got, msg) {
			t.Fatalf("%s: round trip: %v", m.name, err)
		}
	}
}
