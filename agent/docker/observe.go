package docker

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
)

// EngineHealth is what the agent sees of its Docker engine.
type EngineHealth struct {
	Reachable bool
	// Error says why the engine is not reachable.
	Error      string
	Version    string
	APIVersion string
	// RootDir is where the engine keeps its data (docker info's
	// DockerRootDir); DiskFree and DiskTotal are the bytes of the filesystem
	// it is on, 0 when the agent cannot see it (a remote engine).
	RootDir   string
	DiskFree  uint64
	DiskTotal uint64
}

// ContainerHealth is one application's container as Docker reports it.
type ContainerHealth struct {
	Application string
	// Name is the container's name: the Deployer's prefix and Application.
	Name string
	ID   string
	// State is Docker's (created, running, paused, restarting, removing,
	// exited, dead), or StateMissing when no container has the name.
	State string
	// Health is HealthNone without a HEALTHCHECK, else Docker's status
	// (starting, healthy, unhealthy).
	Health       string
	RestartCount int64
	Image        string // the reference it was created from
	ImageID      string
	// TaskID and ReleaseID are its labels; empty on a container made by hand.
	TaskID     string
	ReleaseID  string
	ExitCode   int32
	StartedAt  time.Time // zero when it never started
	FinishedAt time.Time // zero when it never stopped
}

// Observation is one look at the engine and the managed containers.
type Observation struct {
	Engine EngineHealth
	// Containers has one entry per application, sorted by application;
	// nil when the engine is not reachable (their state is then unknown,
	// not missing).
	Containers []ContainerHealth
}

// Values of ContainerHealth.State and Health the engine does not use.
const (
	StateMissing = "missing"
	HealthNone   = "none"
)

// EngineTimeout bounds each look at the engine in Observe: an engine whose
// socket accepts connections but never answers counts as unreachable after
// it, instead of hanging the agent's health report.
const EngineTimeout = 3 * time.Second

// containerTimeout bounds listing and inspecting the containers once the
// engine has answered: a busy engine with many containers is slower.
const containerTimeout = 10 * time.Second

// Observe looks at the engine and at the container of every application
// in apps and of every application whose container (or swap copy) carries
// this agent's name and a tentacle.app label. The container reported for
// an application is the one named prefix+application, labelled or not:
// what runs under the name is what serves. Transient swap containers
// ("<app>.next", "<app>.previous") are never reported as the application.
// It never fails: an engine error is in Engine.Error.
func (d *Deployer) Observe(ctx context.Context, apps []string) Observation {
	var o Observation
	if err := d.observeEngine(ctx, &o.Engine); err != nil {
		o.Engine.Error = err.Error()
		return o
	}
	o.Engine.Reachable = true
	cctx, cancel := context.WithTimeout(ctx, containerTimeout)
	defer cancel()
	containers, err := d.observeContainers(cctx, apps)
	if err != nil {
		o.Engine.Reachable, o.Engine.Error = false, err.Error()
		return o
	}
	o.Containers = containers
	return o
}

func (d *Deployer) observeEngine(ctx context.Context, e *EngineHealth) error {
	ctx, cancel := context.WithTimeout(ctx, EngineTimeout)
	defer cancel()
	v, err := d.api.ServerVersion(ctx)
	if err != nil {
		return fmt.Errorf("docker engine at %s: %w", d.api.DaemonHost(), err)
	}
	info, err := d.api.Info(ctx)
	if err != nil {
		return fmt.Errorf("docker engine info at %s: %w", d.api.DaemonHost(), err)
	}
	e.Version, e.APIVersion, e.RootDir = v.Version, v.APIVersion, info.DockerRootDir
	if localEngine(d.api.DaemonHost()) {
		e.DiskFree, e.DiskTotal = diskSpace(info.DockerRootDir)
	}
	return nil
}

// localEngine reports whether the engine runs on this host, so that its
// data root is a path the agent can measure.
func localEngine(host string) bool {
	u, err := url.Parse(host)
	return err == nil && (u.Scheme == "unix" || u.Scheme == "npipe")
}

func (d *Deployer) observeContainers(ctx context.Context, apps []string) ([]ContainerHealth, error) {
	list, err := d.api.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelApp))})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	all := slices.Clone(apps)
	for _, c := range list {
		if app := c.Labels[LabelApp]; d.ownsName(c.Names, app) {
			all = append(all, app)
		}
	}
	slices.Sort(all)
	all = slices.Compact(all)
	out := make([]ContainerHealth, 0, len(all))
	for _, app := range all {
		if app == "" {
			continue
		}
		h, err := d.observeContainer(ctx, app)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

// ownsName reports whether one of a container's names is this agent's for
// app: its own or a swap copy's. Another agent sharing the engine uses
// another prefix.
func (d *Deployer) ownsName(names []string, app string) bool {
	if app == "" {
		return false
	}
	base := "/" + d.prefix + app
	for _, n := range names {
		if n == base || n == base+suffixNext || n == base+suffixPrevious {
			return true
		}
	}
	return false
}

func (d *Deployer) observeContainer(ctx context.Context, app string) (ContainerHealth, error) {
	h := ContainerHealth{Application: app, Name: d.prefix + app, State: StateMissing}
	c, err := d.inspectName(ctx, h.Name)
	if err != nil || c == nil {
		return h, err
	}
	h.ID, h.ImageID, h.RestartCount = c.ID, c.Image, int64(c.RestartCount)
	if c.Config != nil {
		h.Image = c.Config.Image
		h.TaskID, h.ReleaseID = c.Config.Labels[LabelTask], c.Config.Labels[LabelRelease]
	}
	h.Health = HealthNone
	if s := c.State; s != nil {
		h.State, h.ExitCode = string(s.Status), int32(s.ExitCode)
		h.StartedAt, h.FinishedAt = dockerTime(s.StartedAt), dockerTime(s.FinishedAt)
		if s.Health != nil && s.Health.Status != "" {
			h.Health = string(s.Health.Status)
		}
	}
	return h, nil
}

// dockerTime parses a time of a container's state; Docker writes the zero
// time as "0001-01-01T00:00:00Z" for what has not happened yet.
func dockerTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}

// watchedActions are the container events that change what Observe
// reports. Healthchecks' exec_create/exec_start/exec_die are left out: a
// container with a HEALTHCHECK makes them every interval.
var watchedActions = []events.Action{
	events.ActionCreate, events.ActionStart, events.ActionDie, events.ActionStop, events.ActionKill,
	events.ActionDestroy, events.ActionRename, events.ActionRestart, events.ActionHealthStatus,
	events.ActionOOM, events.ActionPause, events.ActionUnPause,
}

// ErrWatchEnded is in WatchContainers' final error when the engine closed
// the event stream without an error of its own.
var ErrWatchEnded = errors.New("the docker engine closed its event stream")

// WatchContainers subscribes to the engine's container events and sends
// on changes (without blocking: one pending signal stands for any number
// of events) whenever a container that may be this agent's changes: one
// with a tentacle.app label or, when the Deployer has a container prefix,
// a name starting with it (a container made by hand under an
// application's name). A signal can be spurious; the caller observes
// again to learn what changed.
//
// It returns once the engine has answered the subscription (or after
// EngineTimeout, when it does not answer), so that what the caller
// observes next is followed by a signal for every later change.
//
// ended receives exactly one value when the watch is over: nil once ctx
// has ended, else why the stream broke (the engine stopped or restarted;
// ErrWatchEnded when it closed the stream cleanly). The caller then
// observes again, since events may have been missed, and subscribes anew.
// An engine that accepts the connection but never answers ends nothing:
// the caller notices it from Observe and cancels ctx.
func (d *Deployer) WatchContainers(ctx context.Context) (changes <-chan struct{}, ended <-chan error) {
	ch := make(chan struct{}, 1)
	endc := make(chan error, 1)
	subscribed := make(chan struct{})
	go func() {
		// Events returns once the engine has answered the request.
		msgs, errs := d.api.Events(ctx, events.ListOptions{Filters: filters.NewArgs(filters.Arg("type", string(events.ContainerEventType)))})
		close(subscribed)
		for {
			select {
			case m := <-msgs:
				if d.relevant(m) {
					select {
					case ch <- struct{}{}:
					default:
					}
				}
			case err, ok := <-errs:
				switch {
				case ctx.Err() != nil:
					err = nil
				case !ok || err == nil:
					err = ErrWatchEnded
				}
				endc <- err
				return
			}
		}
	}()
	// Waiting for the subscription lets the caller observe after it
	// without missing a change in between; an engine that hangs delays
	// the caller by EngineTimeout at most.
	t := time.NewTimer(EngineTimeout)
	defer t.Stop()
	select {
	case <-subscribed:
	case <-t.C:
	case <-ctx.Done():
	}
	return ch, endc
}

func (d *Deployer) relevant(m events.Message) bool {
	action, _, _ := strings.Cut(string(m.Action), ":") // "health_status: healthy"
	if m.Type != events.ContainerEventType || !slices.Contains(watchedActions, events.Action(action)) {
		return false
	}
	attrs := m.Actor.Attributes
	if attrs[LabelApp] != "" {
		return true
	}
	return d.prefix == "" || strings.HasPrefix(attrs["name"], d.prefix) || strings.HasPrefix(attrs["oldName"], "/"+d.prefix)
}
