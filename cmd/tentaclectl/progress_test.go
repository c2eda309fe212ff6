package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

const (
	waiting = tentaclev1.TaskState_TASK_STATE_WAITING
	running = tentaclev1.DeploymentState_DEPLOYMENT_STATE_RUNNING
)

// rollingTask is a task of a rolling deployment, updated sec seconds after t0.
func rollingTask(id string, wave int32, state tentaclev1.TaskState, sec int, done, total uint64, msg string) *tentaclev1.Task {
	t := task(id, "web-"+id, state, noFailure, msg)
	t.Wave, t.ProgressBytes, t.ProgressTotalBytes = wave, done, total
	t.UpdatedAt = timestamppb.New(t0.Add(time.Duration(sec) * time.Second))
	return t
}

// rollingScript is a deployment of three targets, two per wave, as the
// server sends it: the second wave's task fails.
func rollingScript() (*tentaclev1.Deployment, []*tentaclev1.Task, []*tentaclev1.WatchDeploymentResponse) {
	d := deployment(running)
	d.Rollout = &tentaclev1.Rollout{Window: 2}
	created := []*tentaclev1.Task{rollingTask("a", 1, queued, 0, 0, 0, ""), rollingTask("b", 1, queued, 0, 0, 0, ""), rollingTask("c", 2, waiting, 0, 0, 0, "")}
	ended := deployment(tentaclev1.DeploymentState_DEPLOYMENT_STATE_FAILED)
	ended.Rollout = d.Rollout
	c := rollingTask("c", 2, failed, 9, 0, 0, "container exited with code 1")
	c.FailureKind = tentaclev1.FailureKind_FAILURE_KIND_CONTAINER_EXITED
	return d, created, []*tentaclev1.WatchDeploymentResponse{
		{Deployment: d,
			Tasks:  []*tentaclev1.Task{rollingTask("a", 1, pulling, 1, 0, 0, "pulling r.io/team/web:1.4.2"), rollingTask("b", 1, pulling, 1, 30e6, 100e6, "pulling r.io/team/web:1.4.2"), created[2]},
			Events: []*tentaclev1.TaskEventRecord{event("a", 1, pulling, "pulling r.io/team/web:1.4.2"), event("b", 1, pulling, "pulling r.io/team/web:1.4.2")}},
		// Progress only: a line off the terminal once another tenth is done
		// (79% is in the same tenth as 75%: no line).
		{Deployment: d,
			Tasks: []*tentaclev1.Task{rollingTask("a", 1, pulling, 1, 0, 0, "pulling r.io/team/web:1.4.2"), rollingTask("b", 1, pulling, 2, 75e6, 100e6, "pulling r.io/team/web:1.4.2"), created[2]}},
		{Deployment: d,
			Tasks: []*tentaclev1.Task{rollingTask("a", 1, pulling, 1, 0, 0, "pulling r.io/team/web:1.4.2"), rollingTask("b", 1, pulling, 3, 79e6, 100e6, "pulling r.io/team/web:1.4.2"), created[2]}},
		// The first wave succeeds; the server starts the second (no event).
		{Deployment: d,
			Tasks: []*tentaclev1.Task{rollingTask("a", 1, succeeded, 5, 0, 0, "running sha256:ab"), rollingTask("b", 1, succeeded, 6, 0, 0, "running sha256:ab"), rollingTask("c", 2, queued, 7, 0, 0, "")},
			Events: []*tentaclev1.TaskEventRecord{event("a", 5, succeeded, "running sha256:ab"), event("b", 6, succeeded, "running sha256:ab"),
				event("a", 5, succeeded, "running sha256:ab")}}, // a repeat after a reconnect
		{Deployment: ended,
			Tasks:  []*tentaclev1.Task{rollingTask("a", 1, succeeded, 5, 0, 0, "running sha256:ab"), rollingTask("b", 1, succeeded, 6, 0, 0, "running sha256:ab"), c},
			Events: []*tentaclev1.TaskEventRecord{event("c", 9, failed, "container exited with code 1")}},
	}
}

func testCLI(out io.Writer, width, height int) *cli {
	c := newCLI(out, out)
	c.loc = time.UTC
	c.terminal = func(io.Writer) (int, int, bool) { return width, height, width > 0 }
	return c
}

// Off a terminal: a line per event, per state the server changed and per
// tenth of a pull; never a cursor movement.
func TestProgressLog(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	d, created, script := rollingScript()
	view := newProgressView(testCLI(&out, 0, 0), &out, created)
	if view.tty() {
		t.Fatal("a buffer is taken for a terminal")
	}
	final := &tentaclev1.WatchDeploymentResponse{Deployment: d, Tasks: created}
	for _, msg := range script {
		view.update(final, msg)
	}
	wantOutput(t, out.String(), ""+
		"03:04:06  web-a  w1  pulling    pulling r.io/team/web:1.4.2\n"+
		"03:04:06  web-b  w1  pulling    pulling r.io/team/web:1.4.2\n"+
		"03:04:06  web-b  w1  pulling    30% of 100.0 MB\n"+
		"03:04:07  web-b  w1  pulling    75% of 100.0 MB\n"+
		"03:04:10  web-a  w1  succeeded  running sha256:ab\n"+
		"03:04:11  web-b  w1  succeeded  running sha256:ab\n"+
		"03:04:12  web-c  w2  queued     queued for the target's agent\n"+
		"03:04:14  web-c  w2  failed     container exited with code 1\n")
	if n := len(final.GetEvents()); n != 5 {
		t.Errorf("final holds %d events, want 5 (the repeat once)", n)
	}
}

// On a terminal: one frame, redrawn in place, each line cut to the width.
func TestProgressFrame(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	d, created, script := rollingScript()
	view := newProgressView(testCLI(&out, 64, 24), &out, created)
	final := &tentaclev1.WatchDeploymentResponse{Deployment: d, Tasks: created}
	view.update(final, script[0])
	first := "" +
		"web 1.4.2 to prod: running, wave 1 of 2, 0/3 succeeded (depl...\n" +
		"  web-a  w1  pulling                                pulling ...\n" +
		"  web-b  w1  pulling    [######..............]  30%  pulling...\n" +
		"  web-c  w2  waiting                                waiting ...\n"
	wantOutput(t, out.String(), first)
	for _, l := range strings.Split(first, "\n") {
		if n := len([]rune(l)); n > 63 {
			t.Errorf("line of %d characters on a terminal 64 wide (it would wrap): %q", n, l)
		}
	}

	out.Reset()
	view.update(final, script[1])
	// Up four lines, clear, and the new frame.
	wantOutput(t, out.String(), "\x1b[4A\r\x1b[J"+strings.Replace(first, "[######..............]  30%", "[###############.....]  75%", 1))

	for _, msg := range script[2:] {
		out.Reset()
		view.update(final, msg)
	}
	wantOutput(t, out.String(), "\x1b[4A\r\x1b[J"+
		"web 1.4.2 to prod: failed, wave 2 of 2, 2/3 succeeded (deplo...\n"+
		"  web-a  w1  succeeded  running sha256:ab\n"+
		"  web-b  w1  succeeded  running sha256:ab\n"+
		"  web-c  w2  failed     container exited with code 1\n")
}

// More targets than the terminal has lines: the ones in progress and the
// failed ones are shown, the others counted.
func TestProgressFrameTooManyTargets(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	tasks := []*tentaclev1.Task{
		rollingTask("a", 1, succeeded, 1, 0, 0, "running"), rollingTask("b", 1, failed, 1, 0, 0, "unhealthy"),
		rollingTask("c", 2, pulling, 1, 0, 0, "pulling"), rollingTask("d", 2, succeeded, 1, 0, 0, "running"),
		rollingTask("e", 3, waiting, 1, 0, 0, ""), rollingTask("f", 3, waiting, 1, 0, 0, ""),
	}
	view := newProgressView(testCLI(&out, 80, 5), &out, tasks)
	view.update(&tentaclev1.WatchDeploymentResponse{Deployment: deployment(running)}, &tentaclev1.WatchDeploymentResponse{Tasks: tasks})
	wantOutput(t, out.String(), ""+
		"web 1.4.2 to prod: running, wave 2 of 3, 2/6 succeeded (deployment dep-1)\n"+
		"  web-b  w1  failed     unhealthy\n"+
		"  web-c  w2  pulling    pulling\n"+
		"  ... 4 more: 2 succeeded, 2 waiting\n")
}

// deploy --wait on a terminal: frames redrawn in place, no header line
// before them, then the summary under the last frame.
func TestDeployWaitOnTerminal(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{
		tasks: []*tentaclev1.Task{task("task-1", "web-1", queued, noFailure, ""), task("task-2", "web-22", queued, noFailure, "")},
		watch: watchScript(tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED,
			task("task-2", "web-22", succeeded, noFailure, "running"), event("task-2", 7, succeeded, "running sha256:ab")),
	})
	h.terminal = func(io.Writer) (int, int, bool) { return 100, 30, true }
	r := h.run(t, "deploy", "--app", "web", "--release", "1.4.2", "--env", "prod", "--wait")
	wantCode(t, r, 0)
	wantOutput(t, r.stdout, ""+
		"web 1.4.2 to prod: running, 0/2 succeeded (deployment dep-1)\n"+
		"  web-1   pulling\n"+
		"  web-22  pulling\n"+
		"\x1b[3A\r\x1b[J"+
		"web 1.4.2 to prod: succeeded, 2/2 succeeded (deployment dep-1)\n"+
		"  web-1   succeeded  running\n"+
		"  web-22  succeeded  running\n"+
		"deployment dep-1 succeeded: 2 of 2 tasks succeeded\n")
}

// The server reads tasks before events: a task can lag behind the events
// of the same message, and its older state is not printed as news.
func TestProgressLogIgnoresStaleTasks(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	created := []*tentaclev1.Task{rollingTask("a", 0, queued, 0, 0, 0, "")}
	view := newProgressView(testCLI(&out, 0, 0), &out, created)
	final := &tentaclev1.WatchDeploymentResponse{Deployment: deployment(running), Tasks: created}
	view.update(final, &tentaclev1.WatchDeploymentResponse{
		Tasks:  []*tentaclev1.Task{rollingTask("a", 0, tentaclev1.TaskState_TASK_STATE_ACCEPTED, 1, 0, 0, "")},
		Events: []*tentaclev1.TaskEventRecord{event("a", 2, pulling, "pulling r.io/team/web:1.4.2")},
	})
	view.update(final, &tentaclev1.WatchDeploymentResponse{
		Tasks:  []*tentaclev1.Task{rollingTask("a", 0, pulling, 2, 0, 0, "pulling r.io/team/web:1.4.2")},
		Events: []*tentaclev1.TaskEventRecord{event("a", 3, tentaclev1.TaskState_TASK_STATE_STARTING, "starting")},
	})
	wantOutput(t, out.String(), ""+
		"03:04:07  web-a  pulling    pulling r.io/team/web:1.4.2\n"+
		"03:04:08  web-a  starting   starting\n")
}
