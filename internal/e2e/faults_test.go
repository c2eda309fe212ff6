package e2e

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/events"
)

// TestFaults injects the faults of issue #6 into real deployments: kill -9
// of the agent or the server while the image is pulled, while the container
// is created and started, and during the health gate; a silent partition
// longer than the server's agent timeout. The moment of each fault is
// random, drawn from a seed that the log names so that a run can be
// replayed:
//
//	TENTACLE_FAULT_SEED=S TENTACLE_FAULT_RUNS=1 go test ./internal/e2e -run 'TestFaults/NAME$'
//
// TENTACLE_FAULT_RUNS (default 1) repeats every scenario with the next
// seeds; `make faults` runs the long suite. After each run the test checks
// what a user would: the deployment ended, its task's state is what runs on
// the host, the task created its container once, and the stored log holds
// every line the container printed, once and in order.
func TestFaults(t *testing.T) {
	seed := uint64(time.Now().UnixNano() % 1e9)
	if v := os.Getenv("TENTACLE_FAULT_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("TENTACLE_FAULT_SEED=%q: %v", v, err)
		}
	}
	runs := 1
	if v := os.Getenv("TENTACLE_FAULT_RUNS"); v != "" {
		var err error
		if runs, err = strconv.Atoi(v); err != nil || runs < 1 {
			t.Fatalf("TENTACLE_FAULT_RUNS=%q: want a positive number", v)
		}
	}
	t.Logf("fault seed %d, %d run(s) per scenario", seed, runs)
	for _, sc := range faultScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			runScenario(t, sc, seed, runs)
		})
	}
}

// faultScenario is one fault at one moment of a deployment.
type faultScenario struct {
	name string
	// moment: "pull" (blob downloads held), "create" (the container was
	// created), "gate" (it started; the ready period runs), "deploy" (any
	// time after the deployment was created).
	moment string
	inject func(e *faultEnv, r *faultRun)
	// agentConfig is added to the agent's config file, appEnv to the
	// application's environment.
	agentConfig string
	appEnv      []string
	// lines and interval, when set, replace the test application's 20
	// lines 100ms apart.
	lines    int
	interval time.Duration
	// capped: the scenario fills the agent's log spool past its cap on
	// purpose; the stored log must then mark the gap.
	capped bool
}

func faultScenarios() []faultScenario {
	var list []faultScenario
	for _, m := range []string{"pull", "create", "gate"} {
		list = append(list,
			faultScenario{name: "agent-kill-during-" + m, moment: m, inject: killAgent},
			faultScenario{name: "server-kill-during-" + m, moment: m, inject: killServer})
	}
	return append(list,
		faultScenario{name: "partition-longer-than-agent-timeout", moment: "deploy", inject: partition},
		// 800 lines of 8 KB (6.4 MB) while the server is away overflow
		// the least cap, 4 MiB.
		faultScenario{name: "log-spool-cap-while-server-away", moment: "create", inject: serverAway,
			agentConfig: "log_spool_cap: 4MiB\n", appEnv: []string{"TESTAPP_MESSAGE=" + strings.Repeat("x", 8000)},
			lines: 800, interval: 2 * time.Millisecond, capped: true})
}

// faultRun is one repetition of a scenario.
type faultRun struct {
	seed         uint64
	task         string
	rnd          *rand.Rand
	releaseBlobs func() // non-nil in the pull moment
	logf         func(string, ...any)
}

// between returns a random duration in [lo, hi).
func (r *faultRun) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(r.rnd.Int64N(int64(hi-lo)))
}

func (r *faultRun) sleep(lo, hi time.Duration) {
	d := r.between(lo, hi)
	r.logf("wait %s", d)
	time.Sleep(d)
}

// heal ends the pull stall, if any, after a random delay.
func (r *faultRun) heal() {
	if r.releaseBlobs != nil {
		r.sleep(0, time.Second)
		r.logf("release blob downloads")
		r.releaseBlobs()
	}
}

func killAgent(e *faultEnv, r *faultRun) {
	r.logf("kill -9 agent")
	e.agent.kill()
	r.heal()
	r.sleep(0, time.Second)
	r.logf("start agent")
	e.agent.start()
}

func killServer(e *faultEnv, r *faultRun) {
	r.logf("kill -9 server")
	e.killServer()
	r.heal()
	r.sleep(0, 2*time.Second)
	r.logf("restart server on %s", e.s.addr)
	e.restartServer()
}

// partition stalls the link until the server has dropped the agent's
// session (it noticed the silence), plus a random while, then heals it.
func partition(e *faultEnv, r *faultRun) {
	r.logf("stall the link")
	e.proxy.Stall()
	waitFor(e.t, "the server to notice the silent agent", time.Minute, func() bool {
		var ts targetsJSON
		e.s.json(&ts, "targets")
		return len(ts.Targets) == 1 && !ts.Targets[0].Connected
	})
	r.logf("server dropped the session")
	r.sleep(0, 3*time.Second)
	r.logf("heal the link")
	e.proxy.Heal()
}

// serverAway cuts the link while the container prints, so that its
// output piles up in the agent's spool, and heals it once the container
// has printed everything and the gate has had time to end.
func serverAway(e *faultEnv, r *faultRun) {
	r.logf("cut the link")
	e.proxy.Cut()
	settle(time.Minute, func() bool {
		lines, _ := e.docks.printed(r.task)
		return len(lines) >= e.lines
	})
	r.sleep(0, e.readyAfter)
	r.logf("heal the link")
	e.proxy.Heal()
}

// faultFigures add up a scenario's runs for the summary.
type faultFigures struct {
	runs, lostLines, duplicateLines, duplicateExecutions, failedRuns int
	markedLines                                                      int
	outcomes                                                         map[string]int
}

var faultReport sync.Mutex

func runScenario(t *testing.T, sc faultScenario, seed uint64, runs int) {
	h := fnv.New32a()
	h.Write([]byte(sc.name))
	// Unique per process, not per seed: a replay must pull fresh images
	// and must not meet the containers of another test process.
	app := fmt.Sprintf("flt-%x-%d", h.Sum32(), time.Now().UnixNano()%1e9)
	e := newFaultEnv(t, app, sc)
	// The release that runs before every fault.
	dep, task := e.deploy(e.release())
	if st := e.waitTerminal(dep, 2*time.Minute); st != "DEPLOYMENT_STATE_SUCCEEDED" {
		t.Fatalf("first deployment, without faults: %s (%+v)", st, e.task(dep))
	}
	e.prevTask = task

	fig := faultFigures{outcomes: map[string]int{}}
	for i := range runs {
		s := seed + uint64(i)
		r := &faultRun{seed: s, rnd: rand.New(rand.NewPCG(s, uint64(h.Sum32())))}
		r.logf = func(format string, args ...any) {
			t.Logf("%s seed %d: %s", sc.name, s, fmt.Sprintf(format, args...))
		}
		res := e.run(sc, r)
		fig.runs++
		fig.lostLines += res.lostLines
		fig.duplicateLines += res.duplicateLines
		fig.duplicateExecutions += res.duplicateExecutions
		fig.markedLines += res.markedLines
		fig.outcomes[res.outcome]++
		if len(res.problems) > 0 {
			fig.failedRuns++
			t.Errorf("%s, seed %d (replay: TENTACLE_FAULT_SEED=%d TENTACLE_FAULT_RUNS=1 go test ./internal/e2e -run 'TestFaults/%s$'):\n  %s",
				sc.name, s, s, sc.name, strings.Join(res.problems, "\n  "))
		}
	}
	summary := fmt.Sprintf("%s runs=%d lost_lines=%d duplicate_lines=%d duplicate_executions=%d failed_runs=%d marked_lines=%d outcomes=%v seed=%d",
		sc.name, fig.runs, fig.lostLines, fig.duplicateLines, fig.duplicateExecutions, fig.failedRuns, fig.markedLines, fig.outcomes, seed)
	t.Log("fault summary: " + summary)
	if path := os.Getenv("TENTACLE_FAULT_REPORT"); path != "" {
		faultReport.Lock()
		defer faultReport.Unlock()
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fmt.Fprintln(f, summary)
	}
}

// runResult is what one run measured.
type runResult struct {
	outcome                                        string
	lostLines, duplicateLines, duplicateExecutions int
	// markedLines were dropped at a cap hit on purpose, with a marker.
	markedLines int
	problems    []string
}

// run deploys a new release, injects the scenario's fault at its moment
// and checks what the deployment left.
func (e *faultEnv) run(sc faultScenario, r *faultRun) runResult {
	e.t.Helper()
	e.s.waitConnected(1)
	version := e.release()
	var stalled <-chan string
	if sc.moment == "pull" {
		stalled, r.releaseBlobs = e.reg.StallBlobs(e.t)
	}
	dep, task := e.deploy(version)
	r.task = task
	r.logf("deployment %s, task %s, release %s", dep, task, version)
	switch sc.moment {
	case "pull":
		select {
		case p := <-stalled:
			r.logf("blob download held: %s", p)
		case <-time.After(time.Minute):
			e.t.Fatalf("no blob download within a minute of deployment %s", dep)
		}
		r.sleep(0, 500*time.Millisecond)
	case "create":
		if !e.docks.waitEvent(task, events.ActionCreate, time.Minute) {
			e.t.Fatalf("task %s created no container within a minute", task)
		}
		r.sleep(0, 150*time.Millisecond)
	case "gate":
		if !e.docks.waitEvent(task, events.ActionStart, time.Minute) {
			e.t.Fatalf("task %s started no container within a minute", task)
		}
		r.sleep(0, e.readyAfter*2/3)
	case "deploy":
		r.sleep(0, 2*time.Second)
	}
	sc.inject(e, r)
	return e.check(dep, task, sc.capped, r)
}

// check waits for the deployment to finish and compares what the server
// says with what Docker did.
func (e *faultEnv) check(dep, taskID string, capped bool, r *faultRun) runResult {
	t := e.t
	var res runResult
	problem := func(format string, args ...any) { res.problems = append(res.problems, fmt.Sprintf(format, args...)) }
	state := e.waitTerminal(dep, 3*time.Minute)
	tk := e.task(dep)
	res.outcome = strings.TrimPrefix(tk.State, "TASK_STATE_")
	if tk.FailureKind != "" && tk.FailureKind != "FAILURE_KIND_UNSPECIFIED" {
		res.outcome += "/" + strings.TrimPrefix(tk.FailureKind, "FAILURE_KIND_")
	}
	r.logf("deployment %s, task %s: %s", state, tk.State, tk.Message)
	succeeded := tk.State == "TASK_STATE_SUCCEEDED"
	if succeeded != (state == "DEPLOYMENT_STATE_SUCCEEDED") {
		problem("deployment %s but its only task %s", state, tk.State)
	}

	// The task's state is what runs on the host.
	running := ""
	c, err := e.docker.ContainerInspect(context.Background(), e.app)
	switch {
	case err == nil && c.State.Running:
		running = c.Config.Labels["tentacle.task"]
	case err != nil && !cerrdefs.IsNotFound(err):
		t.Fatalf("inspect %s: %v", e.app, err)
	}
	own := containersOf(t, e.docker, taskID)
	if succeeded {
		if running != taskID {
			problem("task succeeded, but the container running as %s belongs to task %q", e.app, running)
		}
		if len(own) != 1 {
			problem("task succeeded with %d containers labelled with it, want 1", len(own))
		}
	} else {
		if running != e.prevTask {
			problem("task %s (%s), but the container running as %s belongs to task %q, not to the previous release's task %s",
				tk.State, tk.Message, e.app, running, e.prevTask)
		}
		if len(own) != 0 {
			problem("task %s left %d containers labelled with it", tk.State, len(own))
		}
	}

	// Each task created its container once: a second create is a second
	// execution.
	creates := e.docks.createCount(taskID)
	if creates > 1 {
		res.duplicateExecutions = creates - 1
		problem("task created %d containers (Docker create events), want at most 1", creates)
	}
	if succeeded && creates != 1 {
		problem("task succeeded with %d create events, want 1", creates)
	}

	e.checkLog(tk, succeeded, capped, &res, r.logf, problem)

	// The next run's baseline is what really runs now.
	e.prevTask = running
	return res
}

// checkLog compares the stored task log with what the task's containers
// printed according to Docker. Lines dropped at a spool cap hit on purpose
// (capped) must be marked; any other line missing is lost.
func (e *faultEnv) checkLog(tk taskJSON, succeeded, capped bool, res *runResult, logf, problem func(string, ...any)) {
	// A container of a failed task should have been stopped; when it was
	// not, the state check above has said so, and its output so far counts.
	var printed []int
	settle(30*time.Second, func() bool {
		var stopped bool
		printed, stopped = e.docks.printed(tk.ID)
		if succeeded {
			return len(printed) >= e.lines
		}
		return stopped
	})
	// Logs travel on their own stream, in order, and may trail the final
	// state: the last line printed arriving means the rest has. Past the
	// agent's longest backoff (30s) a missing line is lost, not late.
	var stored []int
	var gaps []string
	began := time.Now()
	defer func() {
		if d := time.Since(began); d > 5*time.Second {
			logf("the stored log was complete only %s after the deployment ended", d.Round(time.Second))
		}
	}()
	settle(45*time.Second, func() bool {
		stored, gaps = logLines(e.s.ok("logs", tk.ID))
		return len(stored) >= len(printed) || (len(stored) > 0 && stored[len(stored)-1] == printed[len(printed)-1])
	})
	seen := map[int]int{}
	for _, n := range stored {
		seen[n]++
		if seen[n] == 2 {
			res.duplicateLines++
		}
	}
	missing := 0
	for _, n := range printed {
		if seen[n] == 0 {
			missing++
		}
	}
	if !capped {
		res.lostLines = missing
		if missing > 0 || res.duplicateLines > 0 || !slices.Equal(stored, printed) {
			problem("stored log has lines %v, the container printed %v (%d lost, %d duplicated)", stored, printed, missing, res.duplicateLines)
		}
		if len(gaps) > 0 {
			problem("stored log has gap markers though no cap was hit: %q", gaps)
		}
		return
	}
	res.markedLines = missing
	switch {
	case missing == 0:
		problem("the spool cap was never hit: the stored log has every line %v; the scenario tested nothing", stored)
	case len(gaps) == 0:
		res.lostLines = missing
		problem("stored log has lines %v of %v and no gap marker: %d lines dropped silently", stored, printed, missing)
	case res.duplicateLines > 0 || !slices.IsSorted(stored) || !isSubsequence(stored, printed):
		problem("stored log has lines %v, the container printed %v: duplicated or out of order around the gap", stored, printed)
	case len(gaps) > 1:
		problem("one outage left %d gap markers, want 1: %q", len(gaps), gaps)
	default:
		// The marker counts the bytes it replaces: the missing lines.
		want := 0
		for _, n := range printed {
			if seen[n] == 0 {
				want += len(fmt.Sprintf("line %d %s\n", n, e.message))
			}
		}
		if !strings.HasPrefix(gaps[0], fmt.Sprintf("tentacle: %d bytes ", want)) {
			problem("gap marker %q; the %d lines missing hold %d bytes", gaps[0], missing, want)
		}
	}
}

// isSubsequence reports whether every element of sub appears in seq, in
// the same order.
func isSubsequence(sub, seq []int) bool {
	i := 0
	for _, n := range seq {
		if i < len(sub) && sub[i] == n {
			i++
		}
	}
	return i == len(sub)
}

// settle polls cond until it holds or d passes; what did not settle is
// for the caller's checks to report.
func settle(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
	return true
}
