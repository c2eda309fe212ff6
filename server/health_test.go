package server

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
	"github.com/tentacle-deploy/tentacle/server/store"
)

var healthT0 = time.Date(2026, 11, 26, 12, 1, 2, 0, time.UTC)

// running is the container of application app as the task left it.
func running(app, task string) *tentaclev1.ContainerHealth {
	return &tentaclev1.ContainerHealth{Application: app, Name: app, State: "running", Health: "none", TaskId: task}
}

func report(containers ...*tentaclev1.ContainerHealth) *tentaclev1.HealthReport {
	return &tentaclev1.HealthReport{
		Engine:     &tentaclev1.EngineHealth{Reachable: true, Version: "28.0.1", RootDir: "/var/lib/docker", DiskFreeBytes: 50 << 30, DiskTotalBytes: 100 << 30},
		Containers: containers,
	}
}

func with(c *tentaclev1.ContainerHealth, f func(*tentaclev1.ContainerHealth)) *tentaclev1.ContainerHealth {
	f(c)
	return c
}

// TestJudgeHealth covers every state and every reason a person can see:
// the sentence, the container or application it names, and the flag that
// sets the threshold.
func TestJudgeHealth(t *testing.T) {
	t.Parallel()
	th := HealthThresholds{}
	if err := th.applyDefaults(); err != nil {
		t.Fatal(err)
	}
	web := store.TargetApplication{Application: "web", TaskID: "task-w", ReleaseID: "rel-w", ReleaseVersion: "1.4.0"}
	api := store.TargetApplication{Application: "api", TaskID: "task-a", ReleaseVersion: "7"}
	deployingWeb := web
	deployingWeb.Deploying = true
	lowDisk := report(running("web", "task-w"))
	lowDisk.Engine.DiskFreeBytes = 5 << 30

	const (
		healthy     = tentaclev1.TargetHealthState_TARGET_HEALTH_STATE_HEALTHY
		degraded    = tentaclev1.TargetHealthState_TARGET_HEALTH_STATE_DEGRADED
		unhealthy   = tentaclev1.TargetHealthState_TARGET_HEALTH_STATE_UNHEALTHY
		unavailable = tentaclev1.TargetHealthState_TARGET_HEALTH_STATE_UNAVAILABLE
	)
	for _, tc := range []struct {
		name    string
		in      healthInput
		state   tentaclev1.TargetHealthState
		reasons []string
		drift   []string // application:kind
	}{
		{
			name:  "no session, last seen at a time",
			in:    healthInput{LastSeen: healthT0, Report: report(running("web", "stale")), Applications: []store.TargetApplication{web}},
			state: unavailable, reasons: []string{"no session (last seen 2026-11-26 12:01:02 UTC): agent stopped, host down or link cut"},
		},
		{
			name:  "never connected",
			in:    healthInput{},
			state: unavailable, reasons: []string{"no session yet: the agent has never connected since the target enrolled"},
		},
		{
			name: "engine unreachable",
			in: healthInput{Connected: true, Report: &tentaclev1.HealthReport{Engine: &tentaclev1.EngineHealth{
				Error: "Cannot connect to the Docker daemon at unix:///var/run/docker.sock"}}, Applications: []store.TargetApplication{web}},
			state: unhealthy, reasons: []string{"Docker engine unreachable: Cannot connect to the Docker daemon at unix:///var/run/docker.sock"},
		},
		{
			name:  "connected, no report yet",
			in:    healthInput{Connected: true, Applications: []store.TargetApplication{web}},
			state: degraded, reasons: []string{"no health report from the agent yet (an agent older than the server sends none)"},
		},
		{
			name:  "healthy",
			in:    healthInput{Connected: true, Report: report(running("web", "task-w"), running("api", "task-a")), Applications: []store.TargetApplication{api, web}, SkewKnown: true, Skew: 2 * time.Second},
			state: healthy,
		},
		{
			name: "container restarting",
			in: healthInput{Connected: true, Report: report(with(running("web", "task-w"), func(c *tentaclev1.ContainerHealth) {
				c.State, c.RestartCount = "restarting", 2
			})), Applications: []store.TargetApplication{web}},
			state: degraded, reasons: []string{"container web is restarting: it keeps exiting (tentaclectl logs shows why)"},
		},
		{
			name: "container unhealthy, under the agent's prefix",
			in: healthInput{Connected: true, Report: report(with(running("web", "task-w"), func(c *tentaclev1.ContainerHealth) {
				c.Name, c.Health = "acme-web", "unhealthy"
			})), Applications: []store.TargetApplication{web}},
			state: degraded, reasons: []string{"container acme-web (application web) is unhealthy: its HEALTHCHECK fails"},
		},
		{
			name: "restarted more than the threshold",
			in: healthInput{Connected: true, Report: report(with(running("web", "task-w"), func(c *tentaclev1.ContainerHealth) {
				c.RestartCount = 4
			})), Applications: []store.TargetApplication{web}},
			state: degraded, reasons: []string{"container web restarted 4 times, more than 3 (--health-restarts)"},
		},
		{
			name: "restarted as often as the threshold",
			in: healthInput{Connected: true, Report: report(with(running("web", "task-w"), func(c *tentaclev1.ContainerHealth) {
				c.RestartCount = 3
			})), Applications: []store.TargetApplication{web}},
			state: healthy,
		},
		{
			name: "drift: removed",
			in: healthInput{Connected: true, Report: report(&tentaclev1.ContainerHealth{Application: "web", Name: "web", State: "missing"}),
				Applications: []store.TargetApplication{web}},
			state: degraded, reasons: []string{"drift: container web is gone (removed by hand?); release 1.4.0 should run (tentaclectl deploy --missing puts it right)"},
			drift: []string{"web:removed"},
		},
		{
			name: "drift: stopped (exited)",
			in: healthInput{Connected: true, Report: report(with(running("web", "task-w"), func(c *tentaclev1.ContainerHealth) {
				c.State, c.ExitCode, c.FinishedAt = "exited", 137, timestamppb.New(healthT0)
			})), Applications: []store.TargetApplication{web}},
			state: degraded, reasons: []string{"drift: container web exited with code 137 at 2026-11-26 12:01:02 UTC (stopped or killed by hand?) (tentaclectl deploy --missing puts it right)"},
			drift: []string{"web:stopped"},
		},
		{
			name: "drift: stopped (dead, created, paused)",
			in: healthInput{Connected: true, Report: report(
				with(running("web", "task-w"), func(c *tentaclev1.ContainerHealth) { c.State = "dead" }),
				with(running("api", "task-a"), func(c *tentaclev1.ContainerHealth) { c.State = "paused" }),
				with(running("db", "task-d"), func(c *tentaclev1.ContainerHealth) { c.State = "created" }),
			), Applications: []store.TargetApplication{api, {Application: "db", TaskID: "task-d", ReleaseVersion: "15"}, web}},
			state: degraded, reasons: []string{
				"drift: container api is paused (docker pause?) (tentaclectl deploy --missing puts it right)",
				"drift: container db was created but is not running (stopped by hand?) (tentaclectl deploy --missing puts it right)",
				"drift: container web is dead (Docker could not stop or remove it cleanly) (tentaclectl deploy --missing puts it right)",
			},
			drift: []string{"api:stopped", "db:stopped", "web:stopped"},
		},
		{
			name: "drift: replaced by hand",
			in: healthInput{Connected: true, Report: report(running("web", "")),
				Applications: []store.TargetApplication{web}},
			state: degraded, reasons: []string{"drift: container web was not created by Tentacle (no tentacle.task label; replaced by hand?); release 1.4.0 should run (tentaclectl deploy --missing puts it right)"},
			drift: []string{"web:replaced"},
		},
		{
			name: "drift: replaced by another task",
			in: healthInput{Connected: true, Report: report(running("web", "task-old")),
				Applications: []store.TargetApplication{web}},
			state: degraded, reasons: []string{"drift: container web was created by task task-old, not by task task-w that deployed release 1.4.0 here last (tentaclectl deploy --missing puts it right)"},
			drift: []string{"web:replaced"},
		},
		{
			name: "no drift while a deployment of the application runs, nor container reasons",
			in: healthInput{Connected: true, Report: report(with(running("web", "task-old"), func(c *tentaclev1.ContainerHealth) { c.State = "restarting" })),
				Applications: []store.TargetApplication{deployingWeb}},
			state: healthy,
		},
		{
			name:  "no drift for an application the report does not mention, nor one never deployed",
			in:    healthInput{Connected: true, Report: report(running("cron", "")), Applications: []store.TargetApplication{web}},
			state: healthy,
		},
		{
			name:  "disk nearly full",
			in:    healthInput{Connected: true, Report: lowDisk, Applications: []store.TargetApplication{web}},
			state: degraded, reasons: []string{"disk nearly full: 5.4 GB free of 107.4 GB (5.0%) on /var/lib/docker, under 10% (--health-disk-free)"},
		},
		{
			name:  "clock ahead",
			in:    healthInput{Connected: true, Report: report(), SkewKnown: true, Skew: 45 * time.Second},
			state: degraded, reasons: []string{"agent clock 45s ahead of the server's, more than 30s (--health-clock-skew): check time sync (NTP) on the host"},
		},
		{
			name:  "clock behind",
			in:    healthInput{Connected: true, Report: report(), SkewKnown: true, Skew: -90 * time.Second},
			state: degraded, reasons: []string{"agent clock 1m30s behind the server's, more than 30s (--health-clock-skew): check time sync (NTP) on the host"},
		},
		{
			name: "several reasons, in order",
			in: healthInput{Connected: true, Report: report(with(running("web", "task-w"), func(c *tentaclev1.ContainerHealth) {
				c.Health, c.RestartCount = "unhealthy", 9
			})), SkewKnown: true, Skew: time.Minute, Applications: []store.TargetApplication{web}},
			state: degraded, reasons: []string{
				"container web is unhealthy: its HEALTHCHECK fails",
				"container web restarted 9 times, more than 3 (--health-restarts)",
				"agent clock 1m0s ahead of the server's, more than 30s (--health-clock-skew): check time sync (NTP) on the host",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := tc.in
			in.Thresholds = th
			v := judgeHealth(in)
			if v.State != tc.state {
				t.Errorf("state %s, want %s", v.State, tc.state)
			}
			if got, want := strings.Join(v.Reasons, "\n"), strings.Join(tc.reasons, "\n"); got != want {
				t.Errorf("reasons:\n got: %s\nwant: %s", got, want)
			}
			var drift []string
			for _, d := range v.Drift {
				drift = append(drift, d.GetApplication()+":"+d.GetKind())
				if d.GetExpectedTaskId() == "" || d.GetExpectedReleaseVersion() == "" {
					t.Errorf("drift %v does not say what should run", d)
				}
			}
			if got, want := strings.Join(drift, " "), strings.Join(tc.drift, " "); got != want {
				t.Errorf("drift %q, want %q", got, want)
			}
		})
	}
}

func TestHealthThresholdsRejected(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		th   HealthThresholds
		want string
	}{
		{HealthThresholds{DiskFreePercent: -1}, "--health-disk-free: -1 is not a percentage below 100: use e.g. 10 (degraded under 10% free)"},
		{HealthThresholds{DiskFreePercent: 100}, "--health-disk-free: 100 is not a percentage below 100: use e.g. 10 (degraded under 10% free)"},
		{HealthThresholds{ClockSkew: -time.Second}, "--health-clock-skew: -1s is negative: use a positive duration such as 30s"},
		{HealthThresholds{Restarts: -2}, "--health-restarts: -2 is negative: use a count such as 3 (degraded when a container restarted more often)"},
	} {
		th := tc.th
		if err := th.applyDefaults(); err == nil || err.Error() != tc.want {
			t.Errorf("%+v: got %v, want %q", tc.th, err, tc.want)
		}
	}
	th := HealthThresholds{}
	if err := th.applyDefaults(); err != nil || th != (HealthThresholds{DiskFreePercent: 10, ClockSkew: 30 * time.Second, Restarts: 3}) {
		t.Errorf("defaults: %+v, %v", th, err)
	}
}
