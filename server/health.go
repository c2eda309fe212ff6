package server

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tentacle-deploy/tentacle/internal/bytesize"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
	"github.com/tentacle-deploy/tentacle/server/store"
)

// This file judges a target's health: a pure function of what the server
// knows about the target (its session, the agent's latest health report,
// the clock skew of its heartbeats and what was deployed there). The
// states and every reason are documented in docs/OPERATIONS.md; keep both
// in step.

// Drift kinds (tentaclev1.Drift.kind).
const (
	driftRemoved  = "removed"
	driftStopped  = "stopped"
	driftReplaced = "replaced"
)

// healthInput is everything a target's health is judged from.
type healthInput struct {
	// Connected: the target has a live session.
	Connected bool
	// LastSeen is when the agent last spoke (for an unavailable target).
	LastSeen time.Time
	// Report is the latest health report of the current session; nil when
	// the agent has not sent one on it.
	Report *tentaclev1.HealthReport
	// Skew is the agent's clock minus the server's, from the latest
	// heartbeat of the session; SkewKnown is false before the first one.
	Skew      time.Duration
	SkewKnown bool
	// Applications is what should run on the target: per application its
	// last succeeded task there, and whether a deployment of it is under
	// way there (store.TargetApplications).
	Applications []store.TargetApplication
	Thresholds   HealthThresholds
}

// healthVerdict is the judgement: a state, the reasons it is not healthy
// (sentences for people), and the drift it found (Since left unset: when
// drift was first seen is not the judge's business).
type healthVerdict struct {
	State   tentaclev1.TargetHealthState
	Reasons []string
	Drift   []*tentaclev1.Drift
}

// judgeHealth decides a target's state. In order: no session is
// unavailable; an engine the agent cannot reach is unhealthy; a managed
// container restarting, unhealthy or restarting too often, drift, a disk
// nearly full, a clock off by too much, or no report yet is degraded;
// anything else is healthy. A container whose application is being
// deployed on the target right now is left out: the deployment's health
// gate judges it, and it is expected to change.
func judgeHealth(in healthInput) healthVerdict {
	th := in.Thresholds
	if !in.Connected {
		reason := "no session yet: the agent has never connected since the target enrolled"
		if !in.LastSeen.IsZero() {
			reason = fmt.Sprintf("no session (last seen %s): agent stopped, host down or link cut", in.LastSeen.UTC().Format(time.DateTime+" MST"))
		}
		return healthVerdict{State: tentaclev1.TargetHealthState_TARGET_HEALTH_STATE_UNAVAILABLE, Reasons: []string{reason}}
	}
	var v healthVerdict
	r := in.Report
	if r != nil && !r.GetEngine().GetReachable() {
		msg := r.GetEngine().GetError()
		if msg == "" {
			msg = "the agent gave no error"
		}
		v.Reasons = append(v.Reasons, "Docker engine unreachable: "+msg)
		v.State = tentaclev1.TargetHealthState_TARGET_HEALTH_STATE_UNHEALTHY
		return v
	}
	deploying := map[string]bool{}
	for _, a := range in.Applications {
		deploying[a.Application] = a.Deploying
	}
	if r != nil {
		containers := slices.Clone(r.GetContainers())
		slices.SortFunc(containers, func(a, b *tentaclev1.ContainerHealth) int {
			return strings.Compare(a.GetApplication(), b.GetApplication())
		})
		for _, c := range containers {
			if c.GetState() != "missing" && !deploying[c.GetApplication()] {
				v.Reasons = append(v.Reasons, containerReasons(c, th)...)
			}
		}
		v.Drift = findDrift(in.Applications, containers)
		for _, d := range v.Drift {
			v.Reasons = append(v.Reasons, fmt.Sprintf("drift: %s (tentaclectl deploy --missing puts it right)", d.GetDetail()))
		}
		if reason := diskReason(r.GetEngine(), th); reason != "" {
			v.Reasons = append(v.Reasons, reason)
		}
	}
	if in.SkewKnown && (in.Skew > th.ClockSkew || -in.Skew > th.ClockSkew) {
		dir, off := "ahead of", in.Skew
		if off < 0 {
			dir, off = "behind", -off
		}
		v.Reasons = append(v.Reasons, fmt.Sprintf("agent clock %s %s the server's, more than %s (--health-clock-skew): check time sync (NTP) on the host",
			off.Round(time.Millisecond), dir, th.ClockSkew))
	}
	if r == nil {
		v.Reasons = append(v.Reasons, "no health report from the agent yet (an agent older than the server sends none)")
	}
	v.State = tentaclev1.TargetHealthState_TARGET_HEALTH_STATE_HEALTHY
	if len(v.Reasons) > 0 {
		v.State = tentaclev1.TargetHealthState_TARGET_HEALTH_STATE_DEGRADED
	}
	return v
}

// containerName names a container for people, with its application when
// the agent's container prefix makes the two differ.
func containerName(c *tentaclev1.ContainerHealth) string {
	name := c.GetName()
	if name == "" {
		name = c.GetApplication()
	}
	if name == c.GetApplication() {
		return "container " + name
	}
	return fmt.Sprintf("container %s (application %s)", name, c.GetApplication())
}

// containerReasons are the reasons a running managed container makes its
// target degraded.
func containerReasons(c *tentaclev1.ContainerHealth, th HealthThresholds) []string {
	var out []string
	name := containerName(c)
	if c.GetState() == "restarting" {
		out = append(out, fmt.Sprintf("%s is restarting: it keeps exiting (tentaclectl logs shows why)", name))
	}
	// Docker keeps the last health status of a container that stopped;
	// a stopped container is drift, not a failing healthcheck.
	if c.GetHealth() == "unhealthy" && c.GetState() == "running" {
		out = append(out, fmt.Sprintf("%s is unhealthy: its HEALTHCHECK fails", name))
	}
	if n := c.GetRestartCount(); n > int64(th.Restarts) {
		out = append(out, fmt.Sprintf("%s restarted %d times, more than %d (--health-restarts)", name, n, th.Restarts))
	}
	return out
}

// findDrift compares what the last succeeded task of each application
// left on the target with the containers the agent reports. An
// application being deployed there is skipped (its container is about to
// change), and so is one the report does not mention (an agent that does
// not know it cannot say).
func findDrift(apps []store.TargetApplication, containers []*tentaclev1.ContainerHealth) []*tentaclev1.Drift {
	byApp := make(map[string]*tentaclev1.ContainerHealth, len(containers))
	for _, c := range containers {
		byApp[c.GetApplication()] = c
	}
	var out []*tentaclev1.Drift
	for _, a := range apps {
		c := byApp[a.Application]
		if a.TaskID == "" || a.Deploying || c == nil {
			continue
		}
		d := &tentaclev1.Drift{Application: a.Application, ExpectedReleaseVersion: a.ReleaseVersion, ExpectedTaskId: a.TaskID}
		name := containerName(c)
		switch {
		case c.GetState() == "missing":
			d.Kind = driftRemoved
			d.Detail = fmt.Sprintf("%s is gone (removed by hand?); release %s should run", name, a.ReleaseVersion)
		case c.GetTaskId() == "":
			d.Kind = driftReplaced
			d.Detail = fmt.Sprintf("%s was not created by Tentacle (no tentacle.task label; replaced by hand?); release %s should run", name, a.ReleaseVersion)
		case c.GetTaskId() != a.TaskID:
			d.Kind = driftReplaced
			d.Detail = fmt.Sprintf("%s was created by task %s, not by task %s that deployed release %s here last", name, c.GetTaskId(), a.TaskID, a.ReleaseVersion)
		default:
			d.Kind, d.Detail = stoppedDrift(c, name)
		}
		if d.Kind != "" {
			out = append(out, d)
		}
	}
	return out
}

// stoppedDrift describes a container of the expected task that does not
// run; it returns no kind for one that runs.
func stoppedDrift(c *tentaclev1.ContainerHealth, name string) (kind, detail string) {
	switch c.GetState() {
	case "exited":
		at := ""
		if f := c.GetFinishedAt(); f != nil {
			at = " at " + f.AsTime().UTC().Format(time.DateTime+" MST")
		}
		return driftStopped, fmt.Sprintf("%s exited with code %d%s (stopped or killed by hand?)", name, c.GetExitCode(), at)
	case "dead":
		return driftStopped, name + " is dead (Docker could not stop or remove it cleanly)"
	case "created":
		return driftStopped, name + " was created but is not running (stopped by hand?)"
	case "paused":
		return driftStopped, name + " is paused (docker pause?)"
	}
	return "", ""
}

// diskReason is the reason for a disk nearly full where Docker keeps its
// data, or "".
func diskReason(e *tentaclev1.EngineHealth, th HealthThresholds) string {
	total := e.GetDiskTotalBytes()
	if total == 0 {
		return ""
	}
	pct := float64(e.GetDiskFreeBytes()) / float64(total) * 100
	if pct >= th.DiskFreePercent {
		return ""
	}
	where := e.GetRootDir()
	if where == "" {
		where = "Docker's data root"
	}
	return fmt.Sprintf("disk nearly full: %s free of %s (%.1f%%) on %s, under %g%% (--health-disk-free)",
		bytesize.SI(e.GetDiskFreeBytes()), bytesize.SI(total), pct, where, th.DiskFreePercent)
}
