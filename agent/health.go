package agent

import (
	"context"
	"slices"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tentacle-deploy/tentacle/agent/docker"
	"github.com/tentacle-deploy/tentacle/internal/version"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// Observer is what the health loop needs from the runner to look at the
// host; *docker.Deployer implements it. A Runner that does not (a test
// fake) still gets health reports, with the engine's reachability and
// version from EngineVersion and no containers.
//
// Observe never fails: an engine it cannot reach is in the result.
// WatchContainers follows the engine's container events: changes signals
// (coalesced, possibly spuriously) that Observe may now see something
// else; ended gets one value when the watch is over (nil after ctx ended).
// A nil changes or ended channel never fires.
type Observer interface {
	Observe(ctx context.Context, apps []string) docker.Observation
	WatchContainers(ctx context.Context) (changes <-chan struct{}, ended <-chan error)
}

var _ Observer = (*docker.Deployer)(nil)

// processStart is when this agent process started: its uptime in every
// health report.
var processStart = time.Now()

const (
	// healthDebounce gathers the burst of events one change makes (a
	// `docker kill` is kill, die and perhaps restart) into one report.
	healthDebounce = 300 * time.Millisecond
	// diskEvery is how often a report takes new disk figures, and
	// diskStep (a fraction of the total) how far free space must move
	// for them to count as a change: disk use creeps all the time.
	diskEvery = 30 * time.Second
	diskStep  = 100
	// watchRetryMax bounds the wait before subscribing again to the
	// events of an engine whose stream broke.
	watchRetryMax = 30 * time.Second
)

// healthLoop sends the host's health report on out at once and again
// whenever it changes, until ctx ends: after container events (debounced
// by healthDebounce) and, checked every interval (the session's heartbeat
// interval), when the engine is lost or back, or disk space moved. A
// report equal to the last one sent (apart from its sequence and time) is
// not sent.
func (a *Agent) healthLoop(ctx context.Context, welcomeApps []string, interval time.Duration, out chan<- *tentaclev1.ConnectRequest) {
	r := &healthReporter{a: a, obs: a.observer(), welcomeApps: welcomeApps, out: out}
	var (
		changes     <-chan struct{}
		ended       <-chan error
		stopWatch   = func() {}
		debounce    <-chan time.Time
		retry       <-chan time.Time
		retryWait   = time.Second
		lastReached bool
	)
	defer func() { stopWatch() }()
	// Subscribed before each look, so that no change falls between them.
	watch := func() {
		stopWatch()
		wctx, cancel := context.WithCancel(ctx)
		stopWatch = cancel
		changes, ended = r.obs.WatchContainers(wctx)
	}
	watch()
	lastReached = r.report(ctx)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changes:
			retryWait = time.Second // the stream works
			if debounce == nil {
				debounce = time.After(healthDebounce)
			}
			continue
		case <-debounce:
			debounce = nil
		case err := <-ended:
			changes, ended = nil, nil
			a.log.Warn("docker event stream ended; watching again shortly", zap.Error(err), zap.Duration("in", retryWait))
			retry = time.After(retryWait)
			retryWait = min(2*retryWait, watchRetryMax)
		case <-retry:
			retry = nil
			watch()
		case <-tick.C:
		}
		reached := r.report(ctx)
		if reached && !lastReached {
			// The stream may hang on the connection of an engine that
			// stopped answering, or wait for a retry backed off while it
			// was gone; a fresh one misses nothing from now on.
			watch()
			retry, retryWait = nil, time.Second
			reached = r.report(ctx)
		}
		lastReached = reached
	}
}

// observer is the runner's Observer, or one built on EngineVersion.
func (a *Agent) observer() Observer {
	if o, ok := a.runner.(Observer); ok {
		return o
	}
	return versionObserver{a.runner}
}

// versionObserver reports the engine from EngineVersion and no containers,
// for runners that cannot observe (test fakes).
type versionObserver struct{ r Runner }

func (v versionObserver) Observe(ctx context.Context, _ []string) docker.Observation {
	ctx, cancel := context.WithTimeout(ctx, docker.EngineTimeout)
	defer cancel()
	ver, err := v.r.EngineVersion(ctx)
	if err != nil {
		return docker.Observation{Engine: docker.EngineHealth{Error: err.Error()}}
	}
	return docker.Observation{Engine: docker.EngineHealth{Reachable: true, Version: ver}}
}

func (versionObserver) WatchContainers(context.Context) (<-chan struct{}, <-chan error) {
	return nil, nil
}

// healthReporter builds reports and sends those that differ from the last.
type healthReporter struct {
	a           *Agent
	obs         Observer
	welcomeApps []string
	out         chan<- *tentaclev1.ConnectRequest
	// last is the last report sent, without sequence and time.
	last   *tentaclev1.HealthReport
	diskAt time.Time // when last's disk figures were taken
}

// report observes and sends the report if it changed; it returns whether
// the engine was reachable.
func (r *healthReporter) report(ctx context.Context) bool {
	o := r.obs.Observe(ctx, r.applications())
	rep := &tentaclev1.HealthReport{
		AgentVersion: version.Version, AgentStartedAt: timestamppb.New(processStart),
		Engine: engineToProto(o.Engine),
	}
	for _, c := range o.Containers {
		rep.Containers = append(rep.Containers, containerToProto(c))
	}
	now := time.Now()
	if r.last != nil && keepDisk(r.last.GetEngine(), rep.GetEngine(), now.Sub(r.diskAt)) {
		rep.Engine.DiskFreeBytes, rep.Engine.DiskTotalBytes = r.last.Engine.GetDiskFreeBytes(), r.last.Engine.GetDiskTotalBytes()
	} else {
		r.diskAt = now
	}
	if proto.Equal(rep, r.last) {
		return o.Engine.Reachable
	}
	sent := proto.CloneOf(rep)
	sent.Sequence, sent.ObservedAt = r.a.healthSeq.Add(1), timestamppb.New(now)
	select {
	case r.out <- &tentaclev1.ConnectRequest{Msg: &tentaclev1.ConnectRequest_HealthReport{HealthReport: sent}}:
		r.last = rep
	case <-ctx.Done():
	}
	return o.Engine.Reachable
}

// keepDisk reports whether a report keeps the disk figures of the last
// one: they are younger than diskEvery, or free space moved by less than
// 1/diskStep of the total. A change to or from unknown (0) always counts.
func keepDisk(last, cur *tentaclev1.EngineHealth, age time.Duration) bool {
	lf, lt, cf, ct := last.GetDiskFreeBytes(), last.GetDiskTotalBytes(), cur.GetDiskFreeBytes(), cur.GetDiskTotalBytes()
	if lt == 0 || ct == 0 || lf == 0 || cf == 0 || lt != ct || last.GetRootDir() != cur.GetRootDir() {
		return false
	}
	if age < diskEvery {
		return true
	}
	return max(lf, cf)-min(lf, cf) < ct/diskStep
}

// applications are those whose containers the reports cover: the server's
// (succeeded deployments here, from Welcome) and the journal's; Observe
// adds those with a labelled container.
func (r *healthReporter) applications() []string {
	apps := slices.Clone(r.welcomeApps)
	for _, h := range r.a.journal.Held() {
		if as, ok := r.a.journal.Assignment(h.TaskID); ok && as.Application != "" {
			apps = append(apps, as.Application)
		}
	}
	slices.Sort(apps)
	return slices.Compact(apps)
}

func engineToProto(e docker.EngineHealth) *tentaclev1.EngineHealth {
	return &tentaclev1.EngineHealth{
		Reachable: e.Reachable, Error: e.Error, Version: e.Version, ApiVersion: e.APIVersion,
		RootDir: e.RootDir, DiskFreeBytes: e.DiskFree, DiskTotalBytes: e.DiskTotal,
	}
}

func containerToProto(c docker.ContainerHealth) *tentaclev1.ContainerHealth {
	return &tentaclev1.ContainerHealth{
		Application: c.Application, Name: c.Name, ContainerId: c.ID, State: c.State, Health: c.Health,
		RestartCount: c.RestartCount, Image: c.Image, ImageId: c.ImageID, TaskId: c.TaskID, ReleaseId: c.ReleaseID,
		ExitCode: c.ExitCode, StartedAt: timeOrNil(c.StartedAt), FinishedAt: timeOrNil(c.FinishedAt),
	}
}

func timeOrNil(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
