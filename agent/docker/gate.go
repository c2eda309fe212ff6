package docker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// startAndVerify starts the new container, named app at the moment, with
// its output streamed to logs, and holds the health gate: the image's
// HEALTHCHECK turning healthy, or, without one, the container still running
// after ReadyAfter. When the container fails the gate, the error ends with
// its last lines of output. passed, if not nil, runs once the gate has
// passed, while the output drains (its error is the result).
func (d *Deployer) startAndVerify(ctx context.Context, t Task, id, app string, progress func(Progress), logs io.Writer, passed func(context.Context) error) error {
	return d.verify(ctx, t, id, app, true, progress, logs, passed)
}

// verify is startAndVerify; with start false it holds the gate of a
// container that already runs (Reconcile), counting the time it has run
// towards ReadyAfter and the health limit. Output is streamed from now on.
func (d *Deployer) verify(ctx context.Context, t Task, id, app string, start bool, progress func(Progress), logs io.Writer, passed func(context.Context) error) error {
	rs := t.runSpec()
	ready := rs.ReadyAfter

	tail := newLogTail(tailLines, tailLineBytes)
	// The tail first: MultiWriter stops at the first writer that fails.
	var out *output
	if !start {
		out = d.replayOutput(ctx, t, id, app, tail, logs)
	}
	if out == nil {
		// Attached before the start, the stream holds the output from its
		// very first byte, whatever log driver the engine uses.
		att, err := d.api.ContainerAttach(ctx, id, container.AttachOptions{Stream: true, Stdout: true, Stderr: true})
		if err != nil {
			return fail(FailureDocker, "attach to container %s: %w", app, err)
		}
		out = copyOutput(att, io.MultiWriter(tail, logs))
	}
	defer out.stop(0) // only for early returns; the gate stops it with a drain

	// Registered before the start too, so that an immediate exit is seen.
	waitCtx, cancelWait := context.WithCancel(ctx)
	defer cancelWait()
	exitC, waitErrC := d.api.ContainerWait(waitCtx, id, container.WaitConditionNextExit)

	if start {
		progress(Progress{Phase: PhaseStarting, Message: "starting container " + app})
		if err := d.api.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
			return fail(FailureDocker, "start container %s: %w", app, err)
		}
	}
	c, err := d.api.ContainerInspect(ctx, id)
	if err != nil {
		return fail(FailureDocker, "inspect container %s: %w", app, err)
	}
	var ran time.Duration // how long it has run already
	if !start {
		if c.State == nil || !c.State.Running {
			code := 0
			if c.State != nil {
				code = c.State.ExitCode
			}
			return fail(FailureContainerExited, "container %s exited with code %d while the agent was not running", app, code)
		}
		if at, err := time.Parse(time.RFC3339Nano, c.State.StartedAt); err == nil {
			ran = max(0, time.Since(at))
		}
	}

	g := gate{d: d, app: app, id: id, exitC: exitC, waitErrC: waitErrC}
	var gateErr error
	if hc := healthcheck(c); hc != nil {
		limit := healthLimit(hc, ready)
		if rs.HealthTimeout > 0 {
			limit = rs.HealthTimeout
		}
		limit = max(0, limit-ran)
		var h *container.Health
		if c.State != nil {
			h = c.State.Health
		}
		switch {
		case !start && h != nil && h.Status == container.Healthy:
			progress(Progress{Phase: PhaseVerifying, Message: app + " reports healthy"})
		case !start && h != nil && h.Status == container.Unhealthy:
			gateErr = fail(FailureUnhealthy, "container %s became unhealthy%s", app, lastCheck(h))
		default:
			progress(Progress{Phase: PhaseVerifying, Message: fmt.Sprintf("waiting up to %s for %s to report healthy", limit, app)})
			gateErr = g.healthy(ctx, limit)
		}
	} else {
		ready = max(0, ready-ran)
		progress(Progress{Phase: PhaseVerifying, Message: fmt.Sprintf("waiting %s for %s to keep running", ready, app)})
		gateErr = g.keepsRunning(ctx, ready)
	}
	// After an exit the stream ends by itself once the engine has sent all
	// output; a running container's stream is cut after a short drain so
	// that lines printed just before the end of the gate are still in logs.
	drain, quiet := d.logDrain, logQuiet
	kind := KindOf(gateErr)
	if kind == FailureContainerExited {
		// The stream ends by itself: no cut before the engine's last byte.
		drain, quiet = 10*d.logDrain, 0
	}
	// What follows a passed gate (arming the restart policy) need not
	// wait for the drain.
	var passedErr error
	var armed sync.WaitGroup
	if gateErr == nil && passed != nil {
		armed.Go(func() { passedErr = passed(ctx) })
	}
	out.stopQuiet(drain, quiet)
	armed.Wait()
	switch kind {
	case FailureContainerExited, FailureUnhealthy, FailureHealthTimeout:
		// The container's own last words usually say why; the task's
		// failure message is what `tentaclectl` shows first.
		return &Failure{Kind: kind, Err: fmt.Errorf("%w\n%s", gateErr, tail.describe(app))}
	}
	if gateErr != nil {
		return gateErr
	}
	return passedErr
}

// healthcheck returns the container's effective HEALTHCHECK (image or
// create options), nil when it has none.
func healthcheck(c container.InspectResponse) *container.HealthConfig {
	if c.Config == nil || c.Config.Healthcheck == nil {
		return nil
	}
	hc := c.Config.Healthcheck
	if len(hc.Test) == 0 || hc.Test[0] == "NONE" {
		return nil
	}
	return hc
}

// healthLimit bounds the wait for a verdict: the engine itself declares a
// container unhealthy after the start period and Retries failed checks, so
// this only catches an engine that never decides. Zero fields mean the
// engine's defaults (30s interval and timeout, 3 retries).
func healthLimit(hc *container.HealthConfig, ready time.Duration) time.Duration {
	orDefault := func(v, def time.Duration) time.Duration {
		if v <= 0 {
			return def
		}
		return v
	}
	retries := hc.Retries
	if retries <= 0 {
		retries = 3
	}
	limit := hc.StartPeriod + time.Duration(retries+1)*(orDefault(hc.Interval, 30*time.Second)+orDefault(hc.Timeout, 30*time.Second))
	return max(limit, ready)
}

// gate watches the new container during the health gate.
type gate struct {
	d        *Deployer
	app, id  string
	exitC    <-chan container.WaitResponse
	waitErrC <-chan error
}

func (g gate) keepsRunning(ctx context.Context, ready time.Duration) error {
	timer := time.NewTimer(ready)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case res := <-g.exitC:
		return g.exited(res, fmt.Sprintf("within its %s ready period", ready))
	case err := <-g.waitErrC:
		return g.waitFailed(ctx, err)
	case <-ctx.Done():
		return fail(FailureAgent, "verify container %s: %w", g.app, ctx.Err())
	}
}

func (g gate) healthy(ctx context.Context, limit time.Duration) error {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	poll := time.NewTicker(g.d.healthPoll)
	defer poll.Stop()
	for {
		select {
		case <-timer.C:
			return fail(FailureHealthTimeout, "container %s did not report healthy within %s: its health check is still starting; raise health_timeout if it needs longer", g.app, limit)
		case res := <-g.exitC:
			return g.exited(res, "before it reported healthy")
		case err := <-g.waitErrC:
			return g.waitFailed(ctx, err)
		case <-ctx.Done():
			return fail(FailureAgent, "verify container %s: %w", g.app, ctx.Err())
		case <-poll.C:
			c, err := g.d.api.ContainerInspect(ctx, g.id)
			if err != nil {
				if ctx.Err() != nil {
					return fail(FailureAgent, "verify container %s: %w", g.app, ctx.Err())
				}
				return fail(FailureDocker, "inspect container %s: %w", g.app, err)
			}
			if c.State == nil || c.State.Health == nil {
				continue
			}
			switch c.State.Health.Status {
			case container.Healthy:
				return nil
			case container.Unhealthy:
				return fail(FailureUnhealthy, "container %s became unhealthy%s", g.app, lastCheck(c.State.Health))
			}
		}
	}
}

func (g gate) exited(res container.WaitResponse, when string) error {
	msg := fmt.Sprintf("container %s exited with code %d %s", g.app, res.StatusCode, when)
	if res.Error != nil && res.Error.Message != "" {
		msg += ": " + res.Error.Message
	}
	return fail(FailureContainerExited, "%s", msg)
}

func (g gate) waitFailed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fail(FailureAgent, "verify container %s: %w", g.app, ctx.Err())
	}
	return fail(FailureDocker, "wait for container %s: %w", g.app, err)
}

// lastCheck quotes the latest health check, which says why it failed.
func lastCheck(h *container.Health) string {
	if len(h.Log) == 0 {
		return ""
	}
	last := h.Log[len(h.Log)-1]
	out := strings.TrimSpace(last.Output)
	if len(out) > 200 {
		out = out[:200] + "…"
	}
	if out == "" {
		return fmt.Sprintf(": last check exited with %d", last.ExitCode)
	}
	return fmt.Sprintf(": last check exited with %d: %s", last.ExitCode, out)
}

// logQuiet ends the drain of a running container's output early once the
// stream has carried nothing for this long: what it printed before the end
// of the gate has arrived by then (the engine forwards it within
// milliseconds), and a quiet container does not hold its task's result for
// the whole drain.
const logQuiet = 30 * time.Millisecond

// output copies a container's output stream into logs.
type output struct {
	done chan struct{}
	// cut makes the copy end after at most drain more time; end releases
	// the stream.
	cut func(drain time.Duration)
	end func()
	// last is when the copy last wrote to logs (unix ns).
	last atomic.Int64
}

// stampWriter records when it was last written to.
type stampWriter struct {
	w    io.Writer
	last *atomic.Int64
}

func (s stampWriter) Write(p []byte) (int, error) {
	s.last.Store(time.Now().UnixNano())
	return s.w.Write(p)
}

func copyOutput(att types.HijackedResponse, logs io.Writer) *output {
	return copyStream(att.Reader, logs, func(drain time.Duration) {
		if err := att.Conn.SetReadDeadline(time.Now().Add(drain)); err != nil {
			att.Close()
		}
	}, att.Close)
}

func copyStream(r io.Reader, logs io.Writer, cut func(time.Duration), end func()) *output {
	o := &output{done: make(chan struct{}), cut: cut, end: end}
	o.last.Store(time.Now().UnixNano())
	w := stampWriter{w: logs, last: &o.last}
	go func() {
		defer close(o.done)
		// The stream is multiplexed (no TTY): stdout and stderr frames both
		// go to logs, in the order the engine sent them.
		_, _ = stdcopy.StdCopy(w, w, r)
	}()
	return o
}

// stopQuiet is stop, ending the drain early once nothing was written for
// quiet (0: never early).
func (o *output) stopQuiet(drain, quiet time.Duration) {
	if quiet <= 0 || quiet >= drain {
		o.stop(drain)
		return
	}
	o.cut(drain)
	// Quiet from the later of the last write and now: a line printed just
	// before the end of the gate still has quiet to arrive.
	from := time.Now().UnixNano()
	t := time.NewTicker(quiet / 3)
	defer t.Stop()
	for {
		select {
		case <-o.done:
			o.end()
			return
		case <-t.C:
		}
		if time.Since(time.Unix(0, max(from, o.last.Load()))) >= quiet {
			o.end() // the copy ends at once; nothing is written after done
			<-o.done
			return
		}
	}
}

// stop ends the copy after at most drain more time and returns once
// nothing more will be written to logs. Calling it again is harmless.
func (o *output) stop(drain time.Duration) {
	select {
	case <-o.done:
	default:
		o.cut(drain)
		<-o.done
	}
	o.end()
}

// replayOutput follows the container's log from its first line, passing
// on only what t.Spooled says the task log lacks: the output an agent
// that was killed had not spooled, what the container printed while no
// agent ran, and what it prints from now on. nil when the log cannot be
// replayed (position unknown, or a log driver the engine cannot read
// back): the caller attaches instead, and the task log says what it lacks.
func (d *Deployer) replayOutput(ctx context.Context, t Task, id, app string, tail, logs io.Writer) *output {
	if t.Spooled == nil {
		fmt.Fprintf(logs, "tentacle: what %s printed while the agent was not running is not in this log (docker logs %s has it)\n", app, app)
		return nil
	}
	rc, err := d.api.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true})
	if err != nil {
		fmt.Fprintf(logs, "tentacle: what %s printed while the agent was not running is not in this log: reading it back failed: %v\n", app, err)
		return nil
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	go func() { <-rctx.Done(); rc.Close() }()
	skip := &skipWriter{w: logs, lines: t.Spooled.Lines, partial: t.Spooled.Partial}
	return copyStream(rc, io.MultiWriter(tail, skip), func(drain time.Duration) {
		time.AfterFunc(drain, cancel)
	}, cancel)
}

// skipWriter drops the first lines complete lines and partial bytes of
// the next, and passes everything after them on.
type skipWriter struct {
	w       io.Writer
	lines   int64
	partial int
}

func (s *skipWriter) Write(p []byte) (int, error) {
	n := len(p)
	for s.lines > 0 && len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			return n, nil
		}
		p = p[i+1:]
		s.lines--
	}
	if s.partial > 0 && len(p) > 0 {
		k := min(s.partial, len(p))
		p, s.partial = p[k:], s.partial-k
	}
	if len(p) == 0 {
		return n, nil
	}
	if _, err := s.w.Write(p); err != nil {
		return 0, err
	}
	return n, nil
}
