package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

func event(task string, sec int, state tentaclev1.TaskState, msg string) *tentaclev1.TaskEventRecord {
	return &tentaclev1.TaskEventRecord{TaskId: task, Sequence: uint64(sec), State: state, Message: msg, OccurredAt: timestamppb.New(t0.Add(time.Duration(sec) * time.Second))}
}

func task(id, target string, state tentaclev1.TaskState, kind tentaclev1.FailureKind, msg string) *tentaclev1.Task {
	return &tentaclev1.Task{Id: id, DeploymentId: "dep-1", TargetName: target, State: state, FailureKind: kind, Message: msg}
}

const (
	queued    = tentaclev1.TaskState_TASK_STATE_QUEUED
	pulling   = tentaclev1.TaskState_TASK_STATE_PULLING
	succeeded = tentaclev1.TaskState_TASK_STATE_SUCCEEDED
	failed    = tentaclev1.TaskState_TASK_STATE_FAILED
	noFailure = tentaclev1.FailureKind_FAILURE_KIND_UNSPECIFIED
)

// watchScript is a deployment to two targets that ends in final.
func watchScript(final tentaclev1.DeploymentState, secondTask *tentaclev1.Task, lastEvent *tentaclev1.TaskEventRecord) []*tentaclev1.WatchDeploymentResponse {
	first := task("task-1", "web-1", succeeded, noFailure, "running")
	return []*tentaclev1.WatchDeploymentResponse{
		{
			Deployment: deployment(tentaclev1.DeploymentState_DEPLOYMENT_STATE_RUNNING),
			Tasks:      []*tentaclev1.Task{task("task-1", "web-1", pulling, noFailure, ""), task("task-2", "web-22", pulling, noFailure, "")},
			Events:     []*tentaclev1.TaskEventRecord{event("task-1", 1, pulling, "pulling r.io/team/web:1.4.2"), event("task-2", 1, pulling, "pulling r.io/team/web:1.4.2")},
		},
		{
			Deployment: deployment(final),
			Tasks:      []*tentaclev1.Task{first, secondTask},
			Events:     []*tentaclev1.TaskEventRecord{event("task-1", 5, succeeded, "running sha256:ab"), lastEvent},
		},
	}
}

func TestDeployPrintsID(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{tasks: []*tentaclev1.Task{task("task-1", "web-1", queued, noFailure, "")}})
	r := h.run(t, "deploy", "--app", "web", "--release", "1.4.2", "--env", "prod")
	wantCode(t, r, 0)
	wantRequest(t, h.fake, &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.4.2", Environment: "prod"})
	wantOutput(t, r.stdout, "dep-1\n")
	if r.stderr != "" {
		t.Errorf("stderr = %q", r.stderr)
	}
}

func TestDeployWarnsWithoutTargets(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	r := h.run(t, "deploy", "--app", "web", "--release", "1.4.2", "--env", "prod")
	wantCode(t, r, 0)
	if want := "tentaclectl: warning: deployment dep-1 has no tasks: no target in environment prod\n"; r.stderr != want {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
}

func TestDeployWaitSucceeded(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{
		tasks: []*tentaclev1.Task{task("task-1", "web-1", queued, noFailure, ""), task("task-2", "web-22", queued, noFailure, "")},
		watch: watchScript(tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED,
			task("task-2", "web-22", succeeded, noFailure, "running"), event("task-2", 7, succeeded, "running sha256:ab")),
	})
	r := h.run(t, "deploy", "--app", "web", "--release", "1.4.2", "--env", "prod", "--wait")
	wantCode(t, r, 0)
	wantOutput(t, r.stdout, ""+
		"deployment dep-1: web 1.4.2 to prod, 2 tasks\n"+
		"03:04:06  web-1   pulling    pulling r.io/team/web:1.4.2\n"+
		"03:04:06  web-22  pulling    pulling r.io/team/web:1.4.2\n"+
		"03:04:10  web-1   succeeded  running sha256:ab\n"+
		"03:04:12  web-22  succeeded  running sha256:ab\n"+
		"deployment dep-1 succeeded: 2 of 2 tasks succeeded\n")
}

func TestDeployWaitFailed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{
		tasks: []*tentaclev1.Task{task("task-1", "web-1", queued, noFailure, ""), task("task-2", "web-22", queued, noFailure, "")},
		watch: watchScript(tentaclev1.DeploymentState_DEPLOYMENT_STATE_FAILED,
			task("task-2", "web-22", failed, tentaclev1.FailureKind_FAILURE_KIND_IMAGE_UNAUTHORIZED, "pull r.io/team/web: unauthorized: authentication required"),
			event("task-2", 2, failed, "pull r.io/team/web: unauthorized: authentication required")),
	})
	r := h.run(t, "deploy", "--app", "web", "--release", "1.4.2", "--env", "prod", "--wait")
	wantCode(t, r, 1)
	wantOutput(t, r.stdout, ""+
		"deployment dep-1: web 1.4.2 to prod, 2 tasks\n"+
		"03:04:06  web-1   pulling    pulling r.io/team/web:1.4.2\n"+
		"03:04:06  web-22  pulling    pulling r.io/team/web:1.4.2\n"+
		"03:04:10  web-1   succeeded  running sha256:ab\n"+
		"03:04:07  web-22  failed     pull r.io/team/web: unauthorized: authentication required\n"+
		"deployment dep-1 failed: 1 of 2 tasks succeeded\n"+
		"  web-22  task task-2  image-unauthorized: pull r.io/team/web: unauthorized: authentication required\n"+
		"hint: tentaclectl logs task-2 shows a task's log\n")
	if r.stderr != "" {
		t.Errorf("stderr = %q", r.stderr)
	}
}

func TestDeployWaitJSON(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{
		tasks: []*tentaclev1.Task{task("task-1", "web-1", queued, noFailure, "")},
		watch: watchScript(tentaclev1.DeploymentState_DEPLOYMENT_STATE_FAILED,
			task("task-2", "web-22", failed, tentaclev1.FailureKind_FAILURE_KIND_CONTAINER_EXITED, "exited with code 1"),
			event("task-2", 9, failed, "exited with code 1")),
	})
	r := h.run(t, "deploy", "--app", "web", "--release", "1.4.2", "--env", "prod", "--wait", "-o", "json")
	wantCode(t, r, 1)
	var got struct {
		Deployment struct{ ID, State string }
		Tasks      []struct{ ID, State, FailureKind string }
		Events     []struct{ TaskID, State string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, r.stdout)
	}
	if got.Deployment.State != "DEPLOYMENT_STATE_FAILED" || len(got.Tasks) != 2 || got.Tasks[1].FailureKind != "FAILURE_KIND_CONTAINER_EXITED" || len(got.Events) != 4 {
		t.Errorf("json = %+v", got)
	}
	// Progress and the failure go to stderr, away from the JSON.
	for _, want := range []string{"03:04:14  web-22  failed     exited with code 1\n", "container-exited: exited with code 1", "hint: tentaclectl logs task-2"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}

func TestDeployWaitStreamEndsEarly(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{watch: watchScript(tentaclev1.DeploymentState_DEPLOYMENT_STATE_RUNNING,
		task("task-2", "web-22", pulling, noFailure, ""), event("task-2", 2, pulling, "50%"))})
	r := h.run(t, "deploy", "--app", "web", "--release", "1.4.2", "--env", "prod", "--wait")
	wantCode(t, r, 1)
	if want := "tentaclectl: the server ended the watch while deployment dep-1 is running; see tentaclectl deployment show dep-1\n"; !strings.HasSuffix(r.stderr, want) {
		t.Errorf("stderr = %q, want suffix %q", r.stderr, want)
	}
}

// Ctrl-C stops watching and says so; it does not cancel the deployment
// (there is no call for that, and the CLI makes none).
func TestDeployWaitInterrupted(t *testing.T) {
	t.Parallel()
	watching := make(chan struct{})
	fake := &fakeAdmin{watch: watchScript(tentaclev1.DeploymentState_DEPLOYMENT_STATE_RUNNING,
		task("task-2", "web-22", pulling, noFailure, ""), event("task-2", 2, pulling, "50%"))[:1], watchHold: true, watching: watching,
		tasks: []*tentaclev1.Task{task("task-1", "web-1", queued, noFailure, "")}}
	h := newHarness(t, fake)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-watching
		cancel()
	}()
	r := h.runEnv(t, ctx, h.env(), "deploy", "--app", "web", "--release", "1.4.2", "--env", "prod", "--wait")
	wantCode(t, r, exitInterrupted)
	if want := "\nstopped watching; deployment dep-1 goes on.\n  follow it: tentaclectl deployment show dep-1\n  cancel it: tentaclectl deployment cancel dep-1\n"; r.stderr != want {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
	if n := fake.count(); n != 2 {
		t.Errorf("server got %d requests, want 2 (create and watch)", n)
	}
}

// A stream broken by a server restart resumes: the watch prints each event
// once, the log continues from the last byte received.
func TestStreamsResumeAfterRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{
		breakStreams: true,
		tasks:        []*tentaclev1.Task{task("task-1", "web-1", queued, noFailure, "")},
		watch: watchScript(tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED,
			task("task-2", "web-22", succeeded, noFailure, "running"), event("task-2", 7, succeeded, "running sha256:ab")),
		logChunks: []string{"one\n", "two\n", "three\n"},
	})
	r := h.run(t, "deploy", "--app", "web", "--release", "1.4.2", "--env", "prod", "--wait")
	wantCode(t, r, 0)
	wantOutput(t, r.stdout, ""+
		"deployment dep-1: web 1.4.2 to prod, 1 task\n"+
		"03:04:06  web-1   pulling    pulling r.io/team/web:1.4.2\n"+
		"03:04:06  web-22  pulling    pulling r.io/team/web:1.4.2\n"+
		"03:04:10  web-1   succeeded  running sha256:ab\n"+
		"03:04:12  web-22  succeeded  running sha256:ab\n"+
		"deployment dep-1 succeeded: 2 of 2 tasks succeeded\n")
	if want := "tentaclectl: lost the stream from " + h.addr + " (server is shutting down); reconnecting\n"; r.stderr != want {
		t.Errorf("stderr\n got: %s\nwant: %s", r.stderr, want)
	}

	r = h.run(t, "logs", "task-1", "-f")
	wantCode(t, r, 0)
	wantOutput(t, r.stdout, "one\ntwo\nthree\n")
	h.fake.mu.Lock()
	defer h.fake.mu.Unlock()
	last := h.fake.requests[len(h.fake.requests)-1].(*tentaclev1.ReadTaskLogRequest)
	if last.GetOffset() != 4 || !last.GetFollow() {
		t.Errorf("resumed with %v, want offset 4 and follow", last)
	}
}

func TestDeployForceIsSent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	h.run(t, "deploy", "--app", "web", "--release", "1.4.2", "--env", "prod", "--force")
	wantRequest(t, h.fake, &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.4.2", Environment: "prod", Force: true})
}

func TestDeployDeadline(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	wantCode(t, h.run(t, "deploy", "--app", "web", "--release", "1.4.2", "--env", "prod", "--deadline", "30m"), 0)
	wantRequest(t, h.fake, &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.4.2", Environment: "prod",
		Deadline: durationpb.New(30 * time.Minute)})
	deploy := []string{"deploy", "--app", "web", "--release", "1.4.2", "--env", "prod"}
	wantRefusals(t, h, []refusal{
		{append(deploy, "--deadline", "0s"), "--deadline 0s: use 1s to 168h (7 days), e.g. 30m, or leave it out for the server's default"},
		{append(deploy, "--deadline", "200h"), "--deadline 200h0m0s: use 1s to 168h (7 days), e.g. 30m, or leave it out for the server's default"},
	}, "See 'tentaclectl ")
}

func TestDeployUnavailableFlag(t *testing.T) {
	t.Parallel()
	for value, want := range map[string]tentaclev1.UnavailableTargets{
		"wait": tentaclev1.UnavailableTargets_UNAVAILABLE_TARGETS_WAIT,
		"skip": tentaclev1.UnavailableTargets_UNAVAILABLE_TARGETS_SKIP,
		"FAIL": tentaclev1.UnavailableTargets_UNAVAILABLE_TARGETS_FAIL,
	} {
		h := newHarness(t, &fakeAdmin{tasks: []*tentaclev1.Task{task("task-1", "web-1", queued, noFailure, "")}})
		r := h.run(t, "deploy", "--app", "web", "--release", "1.4.2", "--env", "prod", "--unavailable", value)
		wantCode(t, r, 0)
		wantRequest(t, h.fake, &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.4.2", Environment: "prod", UnavailableTargets: want})
	}
	h := newHarness(t, &fakeAdmin{})
	r := h.run(t, "deploy", "--app", "web", "--release", "1.4.2", "--env", "prod", "--unavailable", "later")
	wantCode(t, r, 2)
	if want := "tentaclectl: --unavailable \"later\": use wait (queue tasks until the target returns), skip (leave such targets out) or fail (fail their tasks at once)\n"; !strings.HasPrefix(r.stderr, want) {
		t.Errorf("stderr = %q, want it to start with %q", r.stderr, want)
	}
	if h.fake.count() != 0 {
		t.Errorf("a bad --unavailable reached the server")
	}
}

func FuzzParseUnavailable(f *testing.F) {
	for _, s := range []string{"wait", "skip", "fail", "Skip", " fail ", "", "later", "wait,skip"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseUnavailable(s)
		if (err == nil) == (p == tentaclev1.UnavailableTargets_UNAVAILABLE_TARGETS_UNSPECIFIED) {
			t.Fatalf("parseUnavailable(%q) = %v, %v: a policy or an error, never both or neither", s, p, err)
		}
		if err != nil && !strings.Contains(err.Error(), "--unavailable") {
			t.Fatalf("error %q does not name the flag", err)
		}
	})
}

// Against a real server: one target connected, one whose agent stopped.
func TestDeployUnavailableTargets(t *testing.T) {
	t.Parallel()
	r := startRealServer(t)
	r.must(t, "env", "create", "dev")
	r.must(t, "app", "create", "web", "--image", "r.example.com/web")
	r.must(t, "release", "create", "--app", "web", "--tag", "1.0")
	r.startAgent(t, "dev", "", &fakeEngine{})
	down := r.startAgent(t, "dev", "", &fakeEngine{})
	down.stop()
	r.eventually(t, "unavailable", "target", "show", down.name)

	res := r.must(t, "deploy", "--app", "web", "--release", "1.0", "--env", "dev", "--unavailable", "skip", "--wait")
	if want := "tentaclectl: skipped 1 unavailable target(s) without a session: " + down.name + "\n"; res.stderr != want {
		t.Errorf("stderr = %q, want %q", res.stderr, want)
	}
	if !strings.Contains(res.stdout, " succeeded: 1 of 1 tasks succeeded\n") {
		t.Errorf("deploy --unavailable skip --wait:\n%s", res.stdout)
	}

	res = r.run(t, "deploy", "--app", "web", "--release", "1.0", "--env", "dev", "--unavailable", "fail", "--wait")
	wantCode(t, res, 1)
	for _, want := range []string{
		" failed: 0 of 2 tasks succeeded\n",
		"target-unavailable: target " + down.name + " has no session (agent stopped, host down or link cut): failed at once",
		"halted: task on " + down.name + " failed",
	} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("deploy --unavailable fail --wait lacks %q:\n%s", want, res.stdout)
		}
	}
}
