package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/tentacle-deploy/tentacle/internal/faultproxy"
	"github.com/tentacle-deploy/tentacle/internal/testimage"
)

// faultEnv is one fault scenario's world: a server, one agent reaching it
// through a fault proxy, a registry that can hold blob downloads, and a
// recorder of what Docker saw happen to the scenario's application.
type faultEnv struct {
	t      *testing.T
	s      *system
	docker *client.Client
	reg    *testimage.Registry
	proxy  *faultproxy.Proxy
	agent  *faultAgent
	app    string
	docks  *dockerRecord
	// lines, interval and readyAfter shape the test application: by
	// default it prints 20 numbered lines 100ms apart, within readyAfter,
	// so that a fault in the health gate lands while it prints.
	lines      int
	interval   time.Duration
	readyAfter time.Duration
	message    string // TESTAPP_MESSAGE, ending every line
	releases   int
	serverArgs []string
	// prevTask is the task whose container should run when a deployment
	// fails: the last one that succeeded.
	prevTask string
}

// faultAgent is an enrolled agent whose process can be killed and started
// again on the same config and data dir.
type faultAgent struct {
	s    *system
	cfg  string
	proc *proc
}

// newFaultEnv starts the system for one scenario, with the scenario's
// additions to the agent's config and the application's environment.
func newFaultEnv(t *testing.T, app string, sc faultScenario, serverArgs ...string) *faultEnv {
	t.Helper()
	docker := requireDocker(t)
	e := &faultEnv{t: t, docker: docker, app: app, lines: 20, interval: 100 * time.Millisecond, readyAfter: 3 * time.Second}
	if sc.lines > 0 {
		e.lines, e.interval = sc.lines, sc.interval
	}
	e.reg = testimage.StartRegistry(t, "fault-user", "fault-pass")
	buildBinaries(t)
	e.s = &system{t: t, dataDir: t.TempDir(), home: t.TempDir()}
	// A short agent timeout (3 heartbeats) keeps the partition short.
	serverArgs = append([]string{"--agent-timeout", "6s"}, serverArgs...)
	e.s.serve("127.0.0.1:0", serverArgs...)
	e.serverArgs = serverArgs
	proxy, err := faultproxy.Start(e.s.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	e.proxy = proxy
	t.Cleanup(func() { removeImages(docker, app) }) // after the containers: cleanups run last first
	removeContainers(t, docker, app)
	e.docks = recordDocker(t, docker, app)

	e.s.ok("env", "create", "faults")
	creds := fmt.Sprintf("registries:\n  - registry: %s\n    username: fault-user\n    password: fault-pass\n", e.reg.Host())
	e.agent = e.enrollAgent(creds + sc.agentConfig)
	e.agent.start()
	e.s.waitConnected(1)
	args := []string{"app", "create", app, "--image", e.reg.Host() + "/fault/" + app,
		"--env", "TESTAPP_LINES=" + strconv.Itoa(e.lines), "--env", "TESTAPP_INTERVAL=" + e.interval.String(),
		"--ready-after", e.readyAfter.String(), "--stop-timeout", "5s"}
	for _, kv := range sc.appEnv {
		args = append(args, "--env", kv)
		if m, ok := strings.CutPrefix(kv, "TESTAPP_MESSAGE="); ok {
			e.message = m
		}
	}
	e.s.ok(args...)
	return e
}

// removeImages removes the images the scenario pushed and the agent
// pulled: a new one per run.
func removeImages(docker *client.Client, app string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, _ := docker.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("label", "fault.app="+app))})
	for _, img := range list {
		docker.ImageRemove(ctx, img.ID, image.RemoveOptions{Force: true, PruneChildren: true})
	}
}

// enrollAgent enrolls directly with the server, then points the agent's
// config at the proxy: every later session goes through it.
func (e *faultEnv) enrollAgent(extra string) *faultAgent {
	e.t.Helper()
	var tok struct{ Token string }
	e.s.json(&tok, "token", "create", "--env", "faults", "--ttl", "10m")
	dir := e.t.TempDir()
	cfg := filepath.Join(dir, "tentacle.yaml")
	body := "data_dir: " + filepath.Join(dir, "data") + "\nlog:\n  format: json\n" + extra
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		e.t.Fatal(err)
	}
	enroll := exec.Command(filepath.Join(binDir, "tentacle"), "enroll", "--config", cfg, "--server", e.s.addr, "--token", tok.Token)
	if out, err := enroll.CombinedOutput(); err != nil {
		e.t.Fatalf("tentacle enroll: %v\n%s", err, out)
	}
	if err := os.WriteFile(cfg, []byte(body+"server: "+e.proxy.Addr()+"\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return &faultAgent{s: e.s, cfg: cfg}
}

func (a *faultAgent) start() { a.proc = start(a.s.t, "tentacle", "run", "--config", a.cfg) }

// kill is kill -9: no shutdown code runs.
func (a *faultAgent) kill() { killProc(a.proc) }

func killProc(p *proc) {
	p.cmd.Process.Kill()
	<-p.done
}

// killServer is kill -9 of the server; restartServer starts it again on
// the same data dir and port, where the proxy still points.
func (e *faultEnv) killServer() { killProc(e.s.server) }

func (e *faultEnv) restartServer() { e.s.serve(e.s.addr, e.serverArgs...) }

// release pushes a new image (its own digest, so every pull really pulls)
// and creates release N of the app.
func (e *faultEnv) release() string {
	e.t.Helper()
	e.releases++
	v := fmt.Sprintf("%d.0", e.releases)
	e.reg.Push(e.t, "fault/"+e.app, v, testimage.Image(e.t, testimage.WithLabel("fault.release", v), testimage.WithLabel("fault.app", e.app)))
	e.s.ok("release", "create", "--app", e.app, "--tag", v)
	return v
}

// deploy starts a deployment of version and returns its id and its task.
func (e *faultEnv) deploy(version string) (deployment, task string) {
	e.t.Helper()
	var resp struct {
		Deployment struct{ ID string }
		Tasks      []struct{ ID string }
	}
	e.s.json(&resp, "deploy", "--app", e.app, "--release", version, "--env", "faults")
	if len(resp.Tasks) != 1 {
		e.t.Fatalf("deployment %s has %d tasks, want 1", resp.Deployment.ID, len(resp.Tasks))
	}
	return resp.Deployment.ID, resp.Tasks[0].ID
}

// waitTerminal waits for the deployment to finish and returns its state.
func (e *faultEnv) waitTerminal(id string, d time.Duration) string {
	e.t.Helper()
	state := ""
	waitFor(e.t, "deployment "+id+" to finish", d, func() bool {
		var deps struct{ Deployments []struct{ ID, State string } }
		e.s.json(&deps, "deployments", "--app", e.app)
		for _, dep := range deps.Deployments {
			if dep.ID == id {
				state = dep.State
			}
		}
		return state != "" && state != "DEPLOYMENT_STATE_RUNNING"
	})
	return state
}

func (e *faultEnv) task(deployment string) taskJSON {
	e.t.Helper()
	var ts struct{ Tasks []taskJSON }
	e.s.json(&ts, "tasks", "--deployment", deployment)
	if len(ts.Tasks) != 1 {
		e.t.Fatalf("deployment %s has %d tasks, want 1", deployment, len(ts.Tasks))
	}
	return ts.Tasks[0]
}

// dockerRecord is what the engine reported about the app's containers,
// from an event stream opened before any deployment: create and start
// events by task, and every container's output as Docker has it.
type dockerRecord struct {
	mu      sync.Mutex
	creates map[string]int            // task id → create events
	starts  map[string][]string       // task id → container ids started
	output  map[string]*containerLogs // container id → its output
	wake    chan struct{}
}

// containerLogs is one container's output read with follow, from the
// start; done once the container stopped.
type containerLogs struct {
	lines []int
	done  bool
}

func recordDocker(t *testing.T, docker *client.Client, app string) *dockerRecord {
	t.Helper()
	r := &dockerRecord{creates: map[string]int{}, starts: map[string][]string{}, output: map[string]*containerLogs{}, wake: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// Since replays what happened from before the call on, so no event
	// falls between subscribing and the stream being live.
	msgs, errs := docker.Events(ctx, events.ListOptions{Since: strconv.FormatInt(time.Now().Unix()-1, 10),
		Filters: filters.NewArgs(filters.Arg("type", string(events.ContainerEventType)), filters.Arg("label", "tentacle.app="+app))})
	go func() {
		for {
			select {
			case m := <-msgs:
				r.event(ctx, docker, m)
			case err := <-errs:
				if ctx.Err() == nil {
					t.Errorf("docker event stream for %s ended: %v", app, err)
				}
				return
			}
		}
	}()
	return r
}

func (r *dockerRecord) event(ctx context.Context, docker *client.Client, m events.Message) {
	task := m.Actor.Attributes["tentacle.task"]
	r.mu.Lock()
	defer r.mu.Unlock()
	switch m.Action {
	case events.ActionCreate:
		r.creates[task]++
	case events.ActionStart:
		r.starts[task] = append(r.starts[task], m.Actor.ID)
		logs := &containerLogs{}
		r.output[m.Actor.ID] = logs // a restart reads the whole output again
		go r.follow(ctx, docker, m.Actor.ID, logs)
	default:
		return
	}
	close(r.wake)
	r.wake = make(chan struct{})
}

func (r *dockerRecord) follow(ctx context.Context, docker *client.Client, id string, logs *containerLogs) {
	rc, err := docker.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true})
	if err == nil {
		pr, pw := io.Pipe()
		go func() { _, err := stdcopy.StdCopy(pw, io.Discard, rc); pw.CloseWithError(err) }()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := lineRE.FindStringSubmatch(sc.Text() + " "); m != nil {
				n, _ := strconv.Atoi(m[1])
				r.mu.Lock()
				logs.lines = append(logs.lines, n)
				r.mu.Unlock()
			}
		}
		rc.Close()
	}
	r.mu.Lock()
	logs.done = true
	r.mu.Unlock()
}

// waitEvent blocks until task has had a create (or start) event, or d passes.
func (r *dockerRecord) waitEvent(task string, action events.Action, d time.Duration) bool {
	deadline := time.After(d)
	for {
		r.mu.Lock()
		seen := (action == events.ActionCreate && r.creates[task] > 0) || (action == events.ActionStart && len(r.starts[task]) > 0)
		wake := r.wake
		r.mu.Unlock()
		if seen {
			return true
		}
		select {
		case <-wake:
		case <-deadline:
			return false
		}
	}
}

func (r *dockerRecord) createCount(task string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.creates[task]
}

// printed is what the task's containers printed, as Docker has it, and
// whether every one of them has stopped.
func (r *dockerRecord) printed(task string) (lines []int, stopped bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	stopped = true
	for _, id := range r.starts[task] {
		if l := r.output[id]; l != nil {
			lines = append(lines, l.lines...)
			stopped = stopped && l.done
		}
	}
	return lines, stopped
}

// containersOf counts the containers (any state) labelled with task.
func containersOf(t *testing.T, docker *client.Client, task string) []container.Summary {
	t.Helper()
	list, err := docker.ContainerList(context.Background(), container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", "tentacle.task="+task))})
	if err != nil {
		t.Fatalf("list containers of task %s: %v", task, err)
	}
	return list
}

// spoolMarkerRE is the line the agent puts where it dropped output at its
// log spool cap.
var spoolMarkerRE = regexp.MustCompile(`^tentacle: \d+ bytes of output dropped here: `)

// logLines is the numbered lines in a stored task log, in order, and the
// log's gap markers.
func logLines(log string) (lines []int, gaps []string) {
	for _, l := range strings.Split(log, "\n") {
		if m := lineRE.FindStringSubmatch(l + " "); m != nil {
			n, _ := strconv.Atoi(m[1])
			lines = append(lines, n)
		} else if spoolMarkerRE.MatchString(l) {
			gaps = append(gaps, l)
		}
	}
	return lines, gaps
}
