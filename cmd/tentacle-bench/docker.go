package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// dockerScenarios are the scenarios with a real agent and Docker.
func dockerScenarios() []scenario {
	return []scenario{
		{name: "logs", about: "figure 5: one container printing flat out and at 1,000 lines/s → bytes stored per second, log latency p99 (tentaclectl logs -f)", run: runLogs},
		{name: "agent", about: "figure 6: RSS and CPU of a real agent process, idle and during a deployment", run: runAgent},
		{name: "overhead", about: "figure 7: deploy by the agent vs docker pull + docker run -d, same image and registry, alternately", run: runOverhead},
	}
}

// logMessage pads testapp's lines to about 160 bytes.
var logMessage = strings.Repeat("x", 128)

// stampReader reads one tentaclectl process's stdout and keeps, for each
// line stamped by testapp inside [from, to], how long after its stamp it
// was read.
type stampReader struct {
	proc *dockerProc

	mu        sync.Mutex
	from, to  int64 // stamps counted, unix ns; to 0: no end yet
	latencies []time.Duration
	lines     int   // stamped lines read
	first     int64 // first stamp read
	bytes     int64
}

func (s *dockerSystem) startStampReader(ctx context.Context, args ...string) (*stampReader, error) {
	cmd := s.ctlCmd(ctx, args...)
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p, err := startDockerProc(cmd)
	if err != nil {
		return nil, err
	}
	r := &stampReader{proc: p, from: 1 << 62}
	go r.read(pipe)
	return r, nil
}

func (r *stampReader) read(pipe io.Reader) {
	br := bufio.NewReaderSize(pipe, 1<<20)
	for {
		line, err := br.ReadSlice('\n')
		now := time.Now().UnixNano()
		if len(line) > 0 {
			st, ok := lineStamp(line)
			r.mu.Lock()
			r.bytes += int64(len(line))
			if ok {
				r.lines++
				if r.first == 0 {
					r.first = st
				}
				if st >= r.from && (r.to == 0 || st <= r.to) {
					r.latencies = append(r.latencies, time.Duration(now-st))
				}
			}
			r.mu.Unlock()
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

func (r *stampReader) setWindow(from, to int64) {
	r.mu.Lock()
	r.from, r.to = from, to
	r.mu.Unlock()
}

func (r *stampReader) firstStamp() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first
}

func (r *stampReader) result() (lat []time.Duration, lines int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.latencies...), r.lines
}

func (r *stampReader) stop() {
	r.proc.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-r.proc.done:
	case <-time.After(10 * time.Second):
		r.proc.cmd.Process.Kill()
		<-r.proc.done
	}
}

// logRun is one deployment of a printing container, read by `tentaclectl
// logs TASK -f` and by the live tail `tentaclectl logs APP --env ENV -f`.
type logRun struct {
	label    string        // "flat out", "1,000 lines/s"
	interval time.Duration // testapp's TESTAPP_INTERVAL
	print    time.Duration // how long it prints
	// task and tail say which readers run: logs TASK -f, the live tail.
	task, tail bool
}

type logResult struct {
	task, tail        []time.Duration
	taskLines         int
	tailLines         int
	rate, stored      float64 // bytes/s and bytes the server stored while printing
	storedIn          time.Duration
	printed, printFor time.Duration
}

func runLogs(ctx context.Context, b *bench, _ int) ([]Figure, error) {
	s, err := startDockerSystem(ctx, b, "logs")
	if err != nil {
		return nil, err
	}
	defer s.close()
	image, err := s.pushImage("logs", "1.0")
	if err != nil {
		return nil, err
	}
	var figs []Figure
	for i, run := range []logRun{
		{label: "flat out", interval: 0, print: 20 * time.Second, task: true},
		{label: "flat out", interval: 0, print: 15 * time.Second, tail: true},
		{label: "1,000 lines/s", interval: time.Millisecond, print: 15 * time.Second, task: true, tail: true},
	} {
		load := loadAverage()
		res, err := s.logRun(ctx, fmt.Sprintf("logs%d", i), image, run)
		if err != nil {
			return nil, err
		}
		readers := "logs TASK -f alone"
		switch {
		case run.task && run.tail:
			readers = "logs TASK -f and the live tail together"
		case run.tail:
			readers = "the live tail alone"
		}
		window := fmt.Sprintf("lines stamped by testapp (TESTAPP_STAMP=1, ~%d-byte lines, printing %s) from when the reader ran to the end of printing, read from the tentaclectl process's stdout by this process; readers: %s; %s",
			len(logMessage)+32, run.print, readers, load)
		if run.interval == 0 && run.task {
			figs = append(figs, atLeast(Figure{Scenario: "logs", Name: "task log stored, flat out", Unit: "MB/s", Value: res.rate / 1e6,
				Note: fmt.Sprintf("tentacle_server_task_log_bytes_total sampled every 250 ms: %.0f MB in %s (MB = 10^6 B) while testapp printed flat out; the task log is collected during the gate (ready_after %s > printing %s), so the whole run is inside it; readers: %s; %s",
					res.stored/1e6, res.storedIn.Round(100*time.Millisecond), run.print+15*time.Second, run.print, readers, load)}, 50))
		}
		if run.task {
			figs = append(figs, atMost(Figure{Scenario: "logs", Name: "latency p99, logs TASK -f, " + run.label, Unit: "ms", Value: ms(percentile(res.task, 99)),
				Note: fmt.Sprintf("p50 %.0f ms over %d lines (%d stamped lines read in all); %s", ms(percentile(res.task, 50)), len(res.task), res.taskLines, window)}, 250))
		}
		if run.tail {
			figs = append(figs, atMost(Figure{Scenario: "logs", Name: "latency p99, live tail APP -f, " + run.label, Unit: "ms", Value: ms(percentile(res.tail, 99)),
				Note: fmt.Sprintf("p50 %.0f ms over %d lines (%d stamped lines read in all); %s", ms(percentile(res.tail, 50)), len(res.tail), res.tailLines, window)}, 250))
		}
	}
	return figs, nil
}

func (s *dockerSystem) logRun(ctx context.Context, app, image string, run logRun) (*logResult, error) {
	b := s.b
	ready := run.print + 15*time.Second
	if _, err := s.ctl(ctx, "app", "create", app, "--image", image, "--ready-after", ready.String(),
		"--env", "TESTAPP_INTERVAL="+run.interval.String(), "--env", "TESTAPP_STAMP=1", "--env", "TESTAPP_DURATION="+run.print.String(),
		"--env", "TESTAPP_LINES=2000000000", "--env", "TESTAPP_MESSAGE="+logMessage); err != nil {
		return nil, err
	}
	if _, err := s.ctl(ctx, "release", "create", "--app", app, "--tag", "1.0"); err != nil {
		return nil, err
	}
	before, err := s.metric(ctx, "tentacle_server_task_log_bytes_total")
	if err != nil {
		return nil, err
	}
	out, err := s.ctl(ctx, "deploy", "--app", app, "--release", "1.0", "--env", s.env)
	if err != nil {
		return nil, err
	}
	dep := strings.TrimSpace(out)
	task, err := s.taskOf(ctx, dep)
	if err != nil {
		return nil, err
	}
	b.logf("logs %s: deployment %s, task %s", run.label, dep, task)
	samples := []counterSample{{at: time.Now(), value: before}}
	started, err := s.containerStarted(ctx, app)
	if err != nil {
		return nil, err
	}
	var readers []*stampReader
	var taskR, tailR *stampReader
	if run.task {
		if taskR, err = s.startStampReader(ctx, "logs", task, "-f"); err != nil {
			return nil, err
		}
		defer taskR.stop()
		readers = append(readers, taskR)
	}
	if run.tail {
		if tailR, err = s.startStampReader(ctx, "logs", app, "--env", s.env, "-f"); err != nil {
			return nil, err
		}
		defer tailR.stop()
		readers = append(readers, tailR)
	}
	for _, r := range readers {
		if err := waitUntil(ctx, "the first line from tentaclectl logs -f", 60*time.Second, func() (bool, error) { return r.firstStamp() != 0, nil }); err != nil {
			return nil, fmt.Errorf("%w\n%s", err, r.proc.out.String())
		}
	}
	from := time.Now().UnixNano()
	end := started.Add(run.print).UnixNano()
	for _, r := range readers {
		r.setWindow(from, end)
	}
	b.logf("logs %s: measuring until printing ends in %s", run.label, time.Until(time.Unix(0, end)).Round(time.Second))
	// Until printing ended and the server has stored what was printed.
	stopAt := time.Unix(0, end).Add(5 * time.Second)
	for time.Now().Before(stopAt) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		v, err := s.metric(ctx, "tentacle_server_task_log_bytes_total")
		if err != nil {
			return nil, err
		}
		samples = append(samples, counterSample{at: time.Now(), value: v})
	}
	res := &logResult{printFor: run.print}
	res.rate, res.stored, res.storedIn = storedRate(samples)
	if taskR != nil {
		taskR.stop()
		res.task, res.taskLines = taskR.result()
	}
	if tailR != nil {
		tailR.stop()
		res.tail, res.tailLines = tailR.result()
	}
	// The gate ends ready_after after the start; then the next run has
	// the machine to itself.
	if err := waitUntil(ctx, "the task to finish", ready+time.Minute, func() (bool, error) {
		st, _, err := s.taskState(ctx, dep)
		return err == nil && slices.Contains([]string{"TASK_STATE_SUCCEEDED", "TASK_STATE_FAILED", "TASK_STATE_CANCELLED"}, st), err
	}); err != nil {
		return nil, err
	}
	if st, msg, _ := s.taskState(ctx, dep); !strings.Contains(st, "SUCCEEDED") {
		b.logf("logs %s: task %s %s: %s", run.label, task, st, msg)
	}
	return res, s.removeContainers(ctx)
}

// containerStarted waits for the agent's container of app to run and
// returns when it started.
func (s *dockerSystem) containerStarted(ctx context.Context, app string) (time.Time, error) {
	var at time.Time
	err := waitUntil(ctx, "the container "+s.prefix+app, 60*time.Second, func() (bool, error) {
		out, err := exec.CommandContext(ctx, "docker", "inspect", "--format", "{{.State.Running}} {{.State.StartedAt}}", s.prefix+app).Output()
		if err != nil {
			return false, nil // not created yet
		}
		f := strings.Fields(string(out))
		if len(f) != 2 || f[0] != "true" {
			return false, nil
		}
		at, err = time.Parse(time.RFC3339Nano, f[1])
		return err == nil, err
	})
	return at, err
}

func runAgent(ctx context.Context, b *bench, _ int) ([]Figure, error) {
	s, err := startDockerSystem(ctx, b, "agent")
	if err != nil {
		return nil, err
	}
	defer s.close()
	pid := s.agent.cmd.Process.Pid
	image, err := s.pushImage("agent", "1.0")
	if err != nil {
		return nil, err
	}
	b.logf("agent: settling 10 s, then 10 s idle")
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(10 * time.Second):
	}
	load := loadAverage()
	a, err := sampleProc(pid)
	if err != nil {
		return nil, err
	}
	peakIdle := a.rss
	for range 10 {
		time.Sleep(time.Second)
		smp, err := sampleProc(pid)
		if err != nil {
			return nil, err
		}
		peakIdle = max(peakIdle, smp.rss)
	}
	z, err := sampleProc(pid)
	if err != nil {
		return nil, err
	}
	idleCPU := cpuPercent(a, z)
	idleRSS, idleAnon := z.rss, z.anon

	if _, err := s.ctl(ctx, "app", "create", "agentapp", "--image", image, "--ready-after", "2s"); err != nil {
		return nil, err
	}
	if _, err := s.ctl(ctx, "release", "create", "--app", "agentapp", "--tag", "1.0"); err != nil {
		return nil, err
	}
	removeImages(ctx, image)
	deployLoad := loadAverage()
	var samples []procSample
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if smp, err := sampleProc(pid); err == nil {
				samples = append(samples, smp)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	began := time.Now()
	_, derr := s.ctl(ctx, "deploy", "--app", "agentapp", "--release", "1.0", "--env", s.env, "--wait")
	took := time.Since(began)
	close(stop)
	<-done
	if derr != nil {
		return nil, derr
	}
	if last, err := sampleProc(pid); err == nil {
		samples = append(samples, last)
	}
	var peak int64
	for _, smp := range samples {
		peak = max(peak, smp.rss)
	}
	deployCPU := cpuPercent(samples[0], samples[len(samples)-1])
	return []Figure{
		atMost(Figure{Scenario: "agent", Name: "idle agent RSS", Unit: "MiB", Value: float64(idleRSS) / (1 << 20),
			Note: fmt.Sprintf("VmRSS of the real tentacle run process with its session, 10 s after it connected (peak %.1f MiB over the 10 s window); of it RssAnon (heap, stacks) %.1f MiB, the rest is the binary's pages mapped from the page cache; %s", float64(peakIdle)/(1<<20), float64(idleAnon)/(1<<20), load)}, 20),
		{Scenario: "agent", Name: "idle agent CPU", Unit: "%", Value: idleCPU,
			Note: fmt.Sprintf("utime+stime over 10 s, %% of one core (/proc/PID/stat, 10 ms ticks); target ~0 %%; %s", load)},
		{Scenario: "agent", Name: "agent peak RSS during a deployment", Unit: "MiB", Value: float64(peak) / (1 << 20),
			Note: fmt.Sprintf("sampled every 100 ms during tentaclectl deploy --wait (%s: pull of a %s image from the local registry, create, start, ready_after 2 s); %s", took.Round(10*time.Millisecond), "~2 MB", deployLoad)},
		{Scenario: "agent", Name: "agent mean CPU during a deployment", Unit: "%", Value: deployCPU,
			Note: fmt.Sprintf("utime+stime over the %s of the deployment, %% of one core (the 2 s gate is mostly waiting); %s", took.Round(10*time.Millisecond), deployLoad)},
	}, nil
}

// removeImages removes every local image of repository ref (tagged or
// pulled by digest); errors are ignored, there may be none.
func removeImages(ctx context.Context, ref string) {
	out, _ := exec.CommandContext(ctx, "docker", "images", "-q", "--no-trunc", ref).Output()
	ids := strings.Fields(string(out))
	if len(ids) > 0 {
		exec.CommandContext(ctx, "docker", append([]string{"rmi", "-f"}, ids...)...).Run()
	}
}

func runOverhead(ctx context.Context, b *bench, _ int) ([]Figure, error) {
	s, err := startDockerSystem(ctx, b, "overhead")
	if err != nil {
		return nil, err
	}
	defer s.close()
	image, err := s.pushImage("over", "1.0")
	if err != nil {
		return nil, err
	}
	if _, err := s.ctl(ctx, "app", "create", "over", "--image", image, "--ready-after", "1ms"); err != nil {
		return nil, err
	}
	if _, err := s.ctl(ctx, "release", "create", "--app", "over", "--tag", "1.0"); err != nil {
		return nil, err
	}
	// The CLI logs in to the registry in its own config directory.
	dockerConfig := filepath.Join(s.dir, "docker-config")
	if err := os.MkdirAll(dockerConfig, 0o700); err != nil {
		return nil, err
	}
	docker := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "docker", args...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+dockerConfig)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("docker %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return nil
	}
	login := exec.CommandContext(ctx, "docker", "login", "--username", dockerRegUser, "--password-stdin", s.reg.Host())
	login.Env = append(os.Environ(), "DOCKER_CONFIG="+dockerConfig)
	login.Stdin = strings.NewReader(dockerRegPass)
	if out, err := login.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("docker login: %v\n%s", err, out)
	}
	cliName := s.prefix + "cli"
	clean := func() error {
		if err := s.removeContainers(ctx); err != nil {
			return err
		}
		removeImages(ctx, image)
		return nil
	}
	admin, closeAdmin, err := s.adminClient()
	if err != nil {
		return nil, err
	}
	defer closeAdmin()
	// The agent twice: through the admin API in this process (the time
	// from CreateDeployment to the task succeeded), and as a user would,
	// with tentaclectl deploy --wait (a process start and a TLS handshake
	// more, as the docker CLI has its own).
	apiRound := func() (time.Duration, error) { return s.deployAndWait(ctx, admin, "over", "1.0") }
	ctlRound := func() (time.Duration, error) {
		began := time.Now()
		if _, err := s.ctl(ctx, "deploy", "--app", "over", "--release", "1.0", "--env", s.env, "--wait"); err != nil {
			return 0, err
		}
		return time.Since(began), nil
	}
	cliRound := func() (time.Duration, error) {
		began := time.Now()
		if err := docker("pull", image+":1.0"); err != nil {
			return 0, err
		}
		if err := docker("run", "-d", "--name", cliName, image+":1.0"); err != nil {
			return 0, err
		}
		return time.Since(began), nil
	}
	const rounds = 10
	load := loadAverage()
	modes := []struct {
		name  string
		round func() (time.Duration, error)
		took  []time.Duration
	}{{name: "agent (API)", round: apiRound}, {name: "docker CLI", round: cliRound}, {name: "agent (tentaclectl)", round: ctlRound}}
	for i := range rounds {
		// Each mode goes first, second and third in turn.
		for j := range modes {
			m := &modes[(i+j)%len(modes)]
			if err := clean(); err != nil {
				return nil, err
			}
			d, err := m.round()
			if err != nil {
				return nil, err
			}
			m.took = append(m.took, d)
			b.logf("overhead round %d: %s %s", i+1, m.name, d.Round(time.Millisecond))
		}
	}
	if err := clean(); err != nil {
		return nil, err
	}
	load += " (start), " + loadAverage() + " (end)"
	ma, mc, mt := median(modes[0].took), median(modes[1].took), median(modes[2].took)
	agentIncludes := "dispatch, pull with credentials, create, attach, start, inspect, the 1 ms gate, the log drain (up to 250 ms; ended after 30 ms without output), arming the restart policy, the events' synced journal writes and round trip"
	return []Figure{
		{Scenario: "overhead", Name: "deploy by the agent, median", Unit: "ms", Value: ms(ma),
			Note: fmt.Sprintf("CreateDeployment → WatchDeployment says the task succeeded, admin API in this process, ready_after 1ms (the smallest gate: 0 means the default 10 s): %s; %d rounds; %s", agentIncludes, rounds, load)},
		{Scenario: "overhead", Name: "docker pull + docker run -d, median", Unit: "ms", Value: ms(mc),
			Note: fmt.Sprintf("wall time of the two docker CLI commands; %d rounds, the three ways in turn, image and containers removed before every round; %s", rounds, load)},
		atMost(Figure{Scenario: "overhead", Name: "agent overhead ratio", Unit: "ratio", Value: float64(ma) / float64(mc),
			Note: fmt.Sprintf("median agent (API) / median docker CLI; %s", load)}, 1.10),
		{Scenario: "overhead", Name: "tentaclectl deploy --wait, median", Unit: "ms", Value: ms(mt),
			Note: fmt.Sprintf("the agent's deployment as a user starts it (process start, TLS handshake); ratio to the docker CLI %.2f; %s", float64(mt)/float64(mc), load)},
	}, nil
}
