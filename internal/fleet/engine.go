package fleet

import (
	"context"
	"fmt"
	"io"
	"maps"
	"sync"

	"github.com/tentacle-deploy/tentacle/agent/docker"
)

// Digest is what every task the simulated engine runs reports as deployed.
const Digest = "sha256:f1ee7f1ee7f1ee7f1ee7f1ee7f1ee7f1ee7f1ee7f1ee7f1ee7f1ee7f1ee7f1ee"

// Engine stands in for the Docker engine behind agent.Runner: every Deploy
// succeeds at once, after the progress a real one reports, and is counted
// by task id so that a test can tell a task that ran twice. It is safe for
// concurrent use by all the agents of a fleet (task ids are unique).
type Engine struct {
	mu   sync.Mutex
	runs map[string]int
	// received, when set, is called as each Deploy begins: the moment
	// the task reached the engine, after the agent journaled and
	// acknowledged it (a benchmark's clock stops there).
	received func(docker.Task)
}

// OnDeploy sets a function called at the start of every Deploy, from the
// agent's goroutine (it must be quick and safe for concurrent use); nil
// removes it.
func (e *Engine) OnDeploy(f func(docker.Task)) {
	e.mu.Lock()
	e.received = f
	e.mu.Unlock()
}

// NewEngine returns an engine that has run nothing.
func NewEngine() *Engine { return &Engine{runs: map[string]int{}} }

// Deploy counts the task and reports it deployed.
func (e *Engine) Deploy(_ context.Context, t docker.Task, progress func(docker.Progress), logs io.Writer) (docker.Result, error) {
	e.mu.Lock()
	e.runs[t.ID]++
	received := e.received
	e.mu.Unlock()
	if received != nil {
		received(t)
	}
	progress(docker.Progress{Phase: docker.PhasePulling, Message: "pulling " + t.Repository + ":" + t.Tag})
	progress(docker.Progress{Phase: docker.PhaseStarting, Message: "starting " + t.Application})
	fmt.Fprintf(logs, "simulated container of %s started\n", t.Application)
	progress(docker.Progress{Phase: docker.PhaseVerifying, Message: "running"})
	return docker.Result{Digest: Digest, ContainerID: "sim-" + t.ID}, nil
}

// Reconcile finds no container of the task: the simulated engine keeps
// none, so a task an earlier agent process left unfinished never ran here.
func (e *Engine) Reconcile(context.Context, docker.Task, func(docker.Progress), io.Writer) (docker.Result, error) {
	return docker.Result{}, docker.ErrNotCreated
}

// EngineVersion names the simulated engine.
func (e *Engine) EngineVersion(context.Context) (string, error) { return "simulated", nil }

// Runs is how many times the task ran.
func (e *Engine) Runs(taskID string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.runs[taskID]
}

// AllRuns returns the number of runs of every task that ran.
func (e *Engine) AllRuns() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.runs)
}

// Simulated disk figures of the engine's data root: plenty free, so that
// no simulated target is degraded by its disk.
const (
	simulatedDiskTotal = 100 << 30
	simulatedDiskFree  = 60 << 30
)

// Observe reports a reachable engine and no containers: the simulated
// engine keeps none, and an application left out of a report is not
// judged (only a reported state "missing" is a removed container).
func (e *Engine) Observe(context.Context, []string) docker.Observation {
	return docker.Observation{Engine: docker.EngineHealth{
		Reachable: true, Version: "simulated", APIVersion: "1.41", RootDir: "/var/lib/docker",
		DiskFree: simulatedDiskFree, DiskTotal: simulatedDiskTotal,
	}}
}

// WatchContainers never signals: nothing changes on the simulated engine
// but through Deploy.
func (e *Engine) WatchContainers(context.Context) (<-chan struct{}, <-chan error) { return nil, nil }
