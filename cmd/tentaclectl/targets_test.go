package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// GetTarget answers with the canned target of that name, details
// included.
func (f *fakeAdmin) GetTarget(ctx context.Context, req *tentaclev1.GetTargetRequest) (*tentaclev1.GetTargetResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	for _, t := range f.targets {
		if t.GetName() == req.GetTarget() || t.GetId() == req.GetTarget() {
			return &tentaclev1.GetTargetResponse{Target: t}, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "target %q: not found: tentaclectl targets lists them", req.GetTarget())
}

const (
	stateHealthy     = tentaclev1.TargetHealthState_TARGET_HEALTH_STATE_HEALTHY
	stateDegraded    = tentaclev1.TargetHealthState_TARGET_HEALTH_STATE_DEGRADED
	stateUnhealthy   = tentaclev1.TargetHealthState_TARGET_HEALTH_STATE_UNHEALTHY
	stateUnavailable = tentaclev1.TargetHealthState_TARGET_HEALTH_STATE_UNAVAILABLE
)

// degradedWeb is a connected target whose web container was stopped by
// hand, with a clock a little ahead.
func degradedWeb() *tentaclev1.Target {
	return &tentaclev1.Target{
		Id: "tgt-1", Name: "web-1", Environment: "prod", Roles: []string{"web"}, Connected: true,
		LastSeenAt: timestamppb.New(t0.Add(50 * time.Second)), AgentVersion: "1.2.0", DockerVersion: "28.0.1", Os: "linux", Arch: "amd64",
		HealthState: stateDegraded,
		HealthReasons: []string{
			"drift: container web exited with code 137 at 2026-01-02 03:04:00 UTC (stopped or killed by hand?) (tentaclectl deploy --missing puts it right)",
			"disk nearly full: 5.4 GB free of 107.4 GB (5.0%) on /var/lib/docker, under 10% (--health-disk-free)",
		},
		Health: &tentaclev1.TargetHealth{
			ReportedAt: timestamppb.New(t0.Add(30 * time.Second)), AgentStartedAt: timestamppb.New(t0.Add(-3 * time.Hour)),
			ClockSkew: durationpb.New(1500 * time.Millisecond),
			Engine: &tentaclev1.EngineHealth{Reachable: true, Version: "28.0.1", ApiVersion: "1.48", RootDir: "/var/lib/docker",
				DiskFreeBytes: 5_000_000_000, DiskTotalBytes: 100_000_000_000},
			Containers: []*tentaclev1.ContainerHealth{
				{Application: "api", Name: "api", State: "running", Health: "healthy", RestartCount: 1, Image: "r.io/team/api:7", ReleaseId: "rel-7", TaskId: "task-7"},
				{Application: "web", Name: "web", State: "exited", Health: "none", Image: "r.io/team/web:1.4.2", ReleaseId: "rel-1", TaskId: "task-1", ExitCode: 137},
			},
			Drift: []*tentaclev1.Drift{{Application: "web", Kind: "stopped", Detail: "container web exited with code 137 at 2026-01-02 03:04:00 UTC (stopped or killed by hand?)",
				ExpectedReleaseVersion: "1.4.2", ExpectedTaskId: "task-1", Since: timestamppb.New(t0.Add(-5 * time.Second))}},
		},
	}
}

func TestTargetsHealth(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{targets: []*tentaclev1.Target{
		degradedWeb(),
		{Name: "web-2", Environment: "prod", Connected: true, HealthState: stateHealthy},
		{Name: "web-3", Environment: "prod", Connected: true, HealthState: stateUnhealthy, HealthReasons: []string{"Docker engine unreachable: connection refused"}},
		{Name: "web-4", Environment: "prod", LastSeenAt: timestamppb.New(t0), HealthState: stateUnavailable,
			HealthReasons: []string{"no session (last seen 2026-01-02 03:04:05 UTC): agent stopped, host down or link cut"}},
		{Name: "old-1", Environment: "prod", HealthState: stateUnavailable, RevokedAt: timestamppb.New(t0), HealthReasons: []string{"no session yet"}},
	}})
	r := h.run(t, "targets")
	wantCode(t, r, 0)
	wantOutput(t, r.stdout, ""+
		"NAME   ENVIRONMENT  ROLES  STATE        LAST SEEN  AGENT  DOCKER  OS/ARCH      CERT EXPIRES  REASON\n"+
		"web-1  prod         web    degraded     10s ago    1.2.0  28.0.1  linux/amd64  -             drift: container web exited with code 137 at 2026-01-02 03:04:00 UTC (stopped or killed by hand?) (tentaclectl deploy --missing puts it right) (+1 more)\n"+
		"web-2  prod         -      healthy      never      -      -       -            -             -\n"+
		"web-3  prod         -      unhealthy    never      -      -       -            -             Docker engine unreachable: connection refused\n"+
		"web-4  prod         -      unavailable  1m ago     -      -       -            -             no session (last seen 2026-01-02 03:04:05 UTC): agent stopped, host down or link cut\n"+
		"old-1  prod         -      revoked      never      -      -       -            -             -\n")
}

func TestTargetShow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{targets: []*tentaclev1.Target{degradedWeb()}})
	r := h.run(t, "target", "show", "web-1")
	wantCode(t, r, 0)
	wantRequest(t, h.fake, &tentaclev1.GetTargetRequest{Target: "web-1"})
	wantOutput(t, r.stdout, ""+
		"Target:       web-1 (id tgt-1)\n"+
		"Environment:  prod\n"+
		"Roles:        web\n"+
		"State:        degraded\n"+
		"Last seen:    10s ago (2026-01-02 03:04:55)\n"+
		"Agent:        1.2.0, started 2026-01-02 00:04:05 (up 3h1m0s)\n"+
		"Clock skew:   1.5s ahead of the server\n"+
		"Docker:       28.0.1 (API 1.48)\n"+
		"Disk:         5.0 GB free of 100.0 GB (5%) on /var/lib/docker\n"+
		"Reported:     30s ago (2026-01-02 03:04:35)\n"+
		"\n"+
		"Reasons:\n"+
		"  - drift: container web exited with code 137 at 2026-01-02 03:04:00 UTC (stopped or killed by hand?) (tentaclectl deploy --missing puts it right)\n"+
		"  - disk nearly full: 5.4 GB free of 107.4 GB (5.0%) on /var/lib/docker, under 10% (--health-disk-free)\n"+
		"\n"+
		"APP  CONTAINER  STATE    HEALTH   RESTARTS  IMAGE                RELEASE  TASK\n"+
		"api  api        running  healthy  1         r.io/team/api:7      rel-7    task-7\n"+
		"web  web        exited   none     0         r.io/team/web:1.4.2  rel-1    task-1\n"+
		"\n"+
		"Drift:\n"+
		"  web: stopped since 2026-01-02 03:04:00: container web exited with code 137 at 2026-01-02 03:04:00 UTC (stopped or killed by hand?)\n"+
		"hint: tentaclectl deploy --app web --release 1.4.2 --env prod --missing puts it right\n")

	// An offline target without any report, and one whose engine is gone.
	h = newHarness(t, &fakeAdmin{targets: []*tentaclev1.Target{
		{Id: "tgt-2", Name: "web-2", Environment: "prod", HealthState: stateUnavailable, HealthReasons: []string{"no session yet: the agent has never connected since the target enrolled"}},
		{Id: "tgt-3", Name: "web-3", Environment: "prod", Connected: true, AgentVersion: "1.2.0", HealthState: stateUnhealthy, HealthReasons: []string{"Docker engine unreachable: connection refused"},
			Health: &tentaclev1.TargetHealth{ReportedAt: timestamppb.New(t0), Engine: &tentaclev1.EngineHealth{Error: "connection refused"}}},
	}})
	r = h.run(t, "target", "show", "tgt-2")
	wantCode(t, r, 0)
	wantOutput(t, r.stdout, ""+
		"Target:       web-2 (id tgt-2)\n"+
		"Environment:  prod\n"+
		"Roles:        -\n"+
		"State:        unavailable\n"+
		"Last seen:    never\n"+
		"Agent:        -\n"+
		"Clock skew:   -\n"+
		"Docker:       -\n"+
		"Disk:         -\n"+
		"Reported:     never\n"+
		"\n"+
		"Reasons:\n"+
		"  - no session yet: the agent has never connected since the target enrolled\n")
	r = h.run(t, "target", "show", "web-3")
	wantCode(t, r, 0)
	if want := "Docker:       unreachable: connection refused\n"; !strings.Contains(r.stdout, want) {
		t.Errorf("target show of an unhealthy target lacks %q:\n%s", want, r.stdout)
	}

	r = h.run(t, "target", "show", "web-3", "-o", "json")
	wantCode(t, r, 0)
	var doc struct {
		Target struct {
			Name, HealthState string
			Health            struct{ Engine struct{ Error string } }
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || doc.Target.Name != "web-3" || doc.Target.HealthState != "TARGET_HEALTH_STATE_UNHEALTHY" ||
		doc.Target.Health.Engine.Error != "connection refused" {
		t.Errorf("target show -o json = %+v (%v):\n%s", doc, err, r.stdout)
	}

	r = h.run(t, "target", "show", "nope")
	wantCode(t, r, 1)
	wantOutput(t, r.stderr, "tentaclectl: target \"nope\": not found: tentaclectl targets lists them\n")
	r = h.run(t, "target", "show", " ")
	wantCode(t, r, 2)
	if !strings.Contains(r.stderr, "empty target: give its name or id (see tentaclectl targets)") {
		t.Errorf("stderr = %q", r.stderr)
	}
}
