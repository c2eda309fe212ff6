package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tentacle-deploy/tentacle/agent/docker"
	"github.com/tentacle-deploy/tentacle/internal/fleet"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// fleetScenarios are the scenarios with simulated agents. They share one
// setup per fleet size (a server process and N connected agents), made by
// the first of them that runs and kept until the size changes; storm,
// which restarts the server, runs last.
func fleetScenarios() []scenario {
	return []scenario{
		{name: "idle", fleet: true, run: runIdle,
			about: "server RSS growth per connected idle agent, and server CPU while N agents idle"},
		{name: "dispatch", fleet: true, run: runDispatch,
			about: "deployment queued → task received by the one agent it targets, p50/p99, N agents idle"},
		{name: "fanout", fleet: true, run: runFanout,
			about: "one deployment to all N agents → all received (acknowledged), → all reported done"},
		{name: "storm", fleet: true, run: runStorm,
			about: "server restarted (SIGTERM, start) under N connected agents → all sessions back"},
	}
}

// The environment, role and applications of the fleet setup.
const (
	benchEnv   = "bench"
	soloRole   = "solo"
	soloApp    = "solo"
	allApp     = "all"
	idleSettle = 10 * time.Second
)

// fleetSetup is a server and N agents: N-1 enrolled without a role and one
// with the role "solo", so that application "solo" deploys to exactly one
// agent of the N and "all" to every one.
type fleetSetup struct {
	n       int
	dataDir string
	server  *serverProc
	token   string
	cc      *grpc.ClientConn
	admin   tentaclev1.AdminServiceClient
	engine  *fleet.Engine
	fleets  []*fleet.Fleet
	// rss0 is the server's RSS before any agent connected, after start.
	rss0      int64
	connected time.Duration // enrolling and connecting all N

	mu       sync.Mutex
	received map[string]chan time.Time // task id → when the engine got it
	byApp    map[string]func(time.Time)
	releases int
}

var current *fleetSetup

// setupFleet returns the setup for n agents, making it (and stopping the
// one of another size) if needed.
func setupFleet(ctx context.Context, b *bench, n int) (*fleetSetup, error) {
	if current != nil && current.n == n {
		return current, nil
	}
	if current != nil {
		current.close()
		current = nil
	}
	fs := &fleetSetup{n: n, dataDir: filepath.Join(b.workDir, fmt.Sprintf("server-%d", n)), engine: fleet.NewEngine(),
		received: map[string]chan time.Time{}, byApp: map[string]func(time.Time){}}
	fs.engine.OnDeploy(fs.onDeploy)
	var err error
	b.logf("fleet %d: starting tentacle-server", n)
	if fs.server, err = startServer(ctx, b, fs.dataDir, "127.0.0.1:0", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	current = fs
	b.cleanup(func() {
		if current == fs {
			fs.close()
			current = nil
		}
	})
	fs.token = fs.server.token
	if fs.token == "" {
		return nil, errors.New("no bootstrap admin token in the server's output")
	}
	if fs.cc, fs.admin, err = dialAdmin(fs.server.addr, filepath.Join(fs.dataDir, "pki", "ca.crt"), fs.token); err != nil {
		return nil, err
	}
	time.Sleep(2 * time.Second) // let the fresh server settle before its RSS is read
	if fs.rss0, err = rssKiB(fs.server.pid()); err != nil {
		return nil, err
	}
	if err := fs.createObjects(ctx); err != nil {
		return nil, err
	}
	start := time.Now()
	for _, group := range []struct {
		agents int
		roles  []string
		name   string
	}{{1, []string{soloRole}, "solo"}, {n - 1, nil, "rest"}} {
		if group.agents == 0 {
			continue
		}
		tok, err := fs.admin.CreateJoinToken(ctx, &tentaclev1.CreateJoinTokenRequest{Environment: benchEnv, Roles: group.roles,
			Ttl: durationpb.New(24 * time.Hour), Uses: int32(group.agents)})
		if err != nil {
			return nil, fmt.Errorf("join token: %w", err)
		}
		b.logf("fleet %d: enrolling and starting %d agents (%s)", n, group.agents, group.name)
		f, err := fleet.Start(ctx, fleet.Config{Server: fs.server.addr, JoinToken: tok.GetToken(), Agents: group.agents,
			Dir: filepath.Join(b.workDir, fmt.Sprintf("agents-%d-%s", n, group.name)), Engine: fs.engine})
		if err != nil {
			return nil, err
		}
		fs.fleets = append(fs.fleets, f)
	}
	if err := fs.waitSessions(ctx, 5*time.Minute+time.Duration(n)*100*time.Millisecond); err != nil {
		return nil, err
	}
	fs.connected = time.Since(start)
	b.logf("fleet %d: all %d sessions up after %s", n, n, fs.connected.Round(time.Millisecond))
	return fs, nil
}

func (fs *fleetSetup) createObjects(ctx context.Context) error {
	if _, err := fs.admin.CreateEnvironment(ctx, &tentaclev1.CreateEnvironmentRequest{Name: benchEnv}); err != nil {
		return fmt.Errorf("create environment: %w", err)
	}
	for _, app := range []struct {
		name  string
		roles []string
	}{{soloApp, []string{soloRole}}, {allApp, nil}} {
		// A realistic run spec: a few variables, a port, a restart policy.
		spec := &tentaclev1.RunSpec{
			Env:           []*tentaclev1.EnvVar{{Name: "APP_ENV", Value: "bench"}, {Name: "LOG_LEVEL", Value: "info"}, {Name: "WORKERS", Value: "4"}},
			Ports:         []*tentaclev1.PortMapping{{HostPort: 8080, ContainerPort: 80}},
			RestartPolicy: "unless-stopped",
		}
		if _, err := fs.admin.CreateApplication(ctx, &tentaclev1.CreateApplicationRequest{Name: app.name,
			ImageRepository: "registry.bench.invalid:5000/bench/" + app.name, RunSpec: spec, Roles: app.roles}); err != nil {
			return fmt.Errorf("create application %s: %w", app.name, err)
		}
	}
	return nil
}

// release creates a new release of app and returns its version: every
// deployment the scenarios make is of a new release, as in real use.
func (fs *fleetSetup) release(ctx context.Context, app string) (string, error) {
	fs.mu.Lock()
	fs.releases++
	v := "1.0." + strconv.Itoa(fs.releases)
	fs.mu.Unlock()
	_, err := fs.admin.CreateRelease(ctx, &tentaclev1.CreateReleaseRequest{Application: app, ImageTag: v})
	if err != nil {
		return "", fmt.Errorf("create release %s %s: %w", app, v, err)
	}
	return v, nil
}

// onDeploy is the engine's hook: the moment a task reached an agent's
// (simulated) engine, i.e. after the agent journaled and acknowledged it.
func (fs *fleetSetup) onDeploy(t docker.Task) {
	at := time.Now()
	fs.mu.Lock()
	f := fs.byApp[t.Application]
	fs.mu.Unlock()
	if f != nil {
		f(at)
	}
}

// watchApp calls f for every task of app an agent receives until the
// returned function is called.
func (fs *fleetSetup) watchApp(app string, f func(time.Time)) func() {
	fs.mu.Lock()
	fs.byApp[app] = f
	fs.mu.Unlock()
	return func() {
		fs.mu.Lock()
		delete(fs.byApp, app)
		fs.mu.Unlock()
	}
}

func (fs *fleetSetup) live() int {
	n := 0
	for _, f := range fs.fleets {
		n += f.Live()
	}
	return n
}

// waitSessions waits until the server counts all N sessions (its
// tentacle_server_sessions gauge) and every agent says it is connected.
func (fs *fleetSetup) waitSessions(ctx context.Context, patience time.Duration) error {
	deadline := time.Now().Add(patience)
	last, lastErr := 0, error(nil)
	for {
		last, lastErr = fs.server.sessions(ctx)
		if lastErr == nil && last == fs.n && fs.live() == fs.n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s the server counts %d of %d sessions, %d agents connected (last error: %v)", patience, last, fs.n, fs.live(), lastErr)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitDeployment polls the deployment until it is no longer running.
func (fs *fleetSetup) waitDeployment(ctx context.Context, id string, every, patience time.Duration) (*tentaclev1.Deployment, error) {
	deadline := time.Now().Add(patience)
	for {
		got, err := fs.admin.GetDeployment(ctx, &tentaclev1.GetDeploymentRequest{Id: id})
		if err != nil {
			return nil, err
		}
		if s := got.GetDeployment().GetState(); s != tentaclev1.DeploymentState_DEPLOYMENT_STATE_RUNNING &&
			s != tentaclev1.DeploymentState_DEPLOYMENT_STATE_UNSPECIFIED {
			return got.GetDeployment(), nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("deployment %s still running after %s", id, patience)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(every):
		}
	}
}

func (fs *fleetSetup) close() {
	for _, f := range fs.fleets {
		f.Stop()
	}
	if fs.cc != nil {
		fs.cc.Close()
	}
	if fs.server != nil {
		fs.server.stop()
	}
}

// --- scenarios ---

func runIdle(ctx context.Context, b *bench, n int) ([]Figure, error) {
	fs, err := setupFleet(ctx, b, n)
	if err != nil {
		return nil, err
	}
	b.logf("idle %d: settling %s", n, idleSettle)
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(idleSettle):
	}
	rssN, err := rssKiB(fs.server.pid())
	if err != nil {
		return nil, err
	}
	cpu, err := cpuPercentOver(fs.server.pid(), 10*time.Second)
	if err != nil {
		return nil, err
	}
	load := loadAverage()
	per := float64(rssN-fs.rss0) / float64(n)
	return []Figure{
		atMost(Figure{Scenario: "idle", Name: "server memory per idle agent", Agents: n, Value: per, Unit: "KiB",
			Note: fmt.Sprintf("(VmRSS with %d agents, %d s after all connected: %.1f MiB − before any: %.1f MiB) / N; Go heap, TLS and gRPC buffers per session; %s",
				n, int(idleSettle/time.Second), float64(rssN)/1024, float64(fs.rss0)/1024, load)}, 64),
		{Scenario: "idle", Name: "server CPU while idle", Agents: n, Value: cpu, Unit: "%",
			Note: fmt.Sprintf("utime+stime over 10 s, %% of one core; heartbeats and health reports of %d sessions; agents run in the bench process; %s", n, load)},
	}, nil
}

// dispatchRounds is how many single-target deployments dispatch times.
const dispatchRounds = 200

func runDispatch(ctx context.Context, b *bench, n int) ([]Figure, error) {
	fs, err := setupFleet(ctx, b, n)
	if err != nil {
		return nil, err
	}
	got := make(chan time.Time, 16)
	defer fs.watchApp(soloApp, func(at time.Time) {
		select { // never block an agent: a surplus receipt is dropped
		case got <- at:
		default:
		}
	})()
	var samples []time.Duration
	b.logf("dispatch %d: %d deployments to one agent", n, dispatchRounds)
	for range dispatchRounds {
		v, err := fs.release(ctx, soloApp)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		resp, err := fs.admin.CreateDeployment(ctx, &tentaclev1.CreateDeploymentRequest{Application: soloApp, ReleaseVersion: v, Environment: benchEnv})
		if err != nil {
			return nil, fmt.Errorf("create deployment: %w", err)
		}
		select {
		case at := <-got:
			samples = append(samples, at.Sub(start))
		case <-time.After(time.Minute):
			return nil, fmt.Errorf("deployment %s: no task reached the agent within a minute", resp.GetDeployment().GetId())
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		// The next deployment starts on a quiet fleet: this one finished.
		d, err := fs.waitDeployment(ctx, resp.GetDeployment().GetId(), 5*time.Millisecond, time.Minute)
		if err != nil {
			return nil, err
		}
		if d.GetState() != tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED {
			return nil, fmt.Errorf("deployment %s ended %v", d.GetId(), d.GetState())
		}
	}
	load := loadAverage()
	note := fmt.Sprintf("%d deployments one after another, each of a new release to the one target of %d with role solo: CreateDeployment called → the agent's engine got the task (after the agent journaled and acknowledged it); %s",
		len(samples), n, load)
	return []Figure{
		{Scenario: "dispatch", Name: "dispatch latency p50", Agents: n, Value: ms(percentile(samples, 50)), Unit: "ms", Note: note},
		atMost(Figure{Scenario: "dispatch", Name: "dispatch latency p99", Agents: n, Value: ms(percentile(samples, 99)), Unit: "ms", Note: note}, 50),
	}, nil
}

func runFanout(ctx context.Context, b *bench, n int) ([]Figure, error) {
	fs, err := setupFleet(ctx, b, n)
	if err != nil {
		return nil, err
	}
	v, err := fs.release(ctx, allApp)
	if err != nil {
		return nil, err
	}
	var count atomic.Int64
	allIn := make(chan time.Time, 1)
	defer fs.watchApp(allApp, func(at time.Time) {
		if count.Add(1) == int64(n) {
			allIn <- at
		}
	})()
	b.logf("fanout %d: one deployment to all", n)
	start := time.Now()
	resp, err := fs.admin.CreateDeployment(ctx, &tentaclev1.CreateDeploymentRequest{Application: allApp, ReleaseVersion: v, Environment: benchEnv})
	if err != nil {
		return nil, fmt.Errorf("create deployment: %w", err)
	}
	created := time.Since(start)
	var acked time.Duration
	select {
	case at := <-allIn:
		acked = at.Sub(start)
	case <-time.After(5 * time.Minute):
		return nil, fmt.Errorf("fan-out: %d of %d tasks reached their agents after 5 minutes", count.Load(), n)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	const poll = 20 * time.Millisecond
	d, err := fs.waitDeployment(ctx, resp.GetDeployment().GetId(), poll, 10*time.Minute)
	if err != nil {
		return nil, err
	}
	done := time.Since(start)
	if d.GetState() != tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED {
		return nil, fmt.Errorf("fan-out deployment ended %v", d.GetState())
	}
	load := loadAverage()
	return []Figure{
		atMost(Figure{Scenario: "fanout", Name: "fan-out → all acknowledged", Agents: n, Value: float64(acked) / float64(time.Second), Unit: "s",
			Note: fmt.Sprintf("CreateDeployment called (it returned after %s: one transaction for %d tasks) → the last agent's engine got its task (after journal and ack); %s",
				created.Round(time.Millisecond), n, load)}, 2),
		{Scenario: "fanout", Name: "fan-out → all reported done", Agents: n, Value: float64(done) / float64(time.Second), Unit: "s",
			Note: fmt.Sprintf("→ GetDeployment says succeeded (polled every %s): every agent's events stored and acknowledged; %s", poll, load)},
	}, nil
}

func runStorm(ctx context.Context, b *bench, n int) ([]Figure, error) {
	fs, err := setupFleet(ctx, b, n)
	if err != nil {
		return nil, err
	}
	addr, httpAddr := fs.server.addr, fs.server.httpAddr
	b.logf("storm %d: SIGTERM the server", n)
	stopAt := time.Now()
	fs.server.stop()
	stopped := time.Since(stopAt)
	startAt := time.Now()
	fs.server, err = startServer(ctx, b, fs.dataDir, addr, httpAddr)
	if err != nil {
		return nil, fmt.Errorf("restart: %w", err)
	}
	serving := time.Since(startAt)
	if err := fs.waitSessions(ctx, 10*time.Minute); err != nil {
		return nil, err
	}
	back := time.Since(startAt)
	load := loadAverage()
	return []Figure{
		atMost(Figure{Scenario: "storm", Name: "reconnect storm → all sessions back", Agents: n, Value: float64(back) / float64(time.Second), Unit: "s",
			Note: fmt.Sprintf("SIGTERM (an operator's restart; the old process took %s to drain and exit), new process started with the same data dir and addresses → server counts %d sessions and every agent says connected; serving after %s; agents back off with jitter and the server's handshake limiter; %s",
				stopped.Round(time.Millisecond), n, serving.Round(time.Millisecond), load)}, 30),
	}, nil
}
