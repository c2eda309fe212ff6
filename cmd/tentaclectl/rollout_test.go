package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// The fake's answers to the rollout calls; the server's own behaviour is
// tested against a real server in realserver_test.go.

func (f *fakeAdmin) UpdateEnvironment(ctx context.Context, req *tentaclev1.UpdateEnvironmentRequest) (*tentaclev1.UpdateEnvironmentResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &tentaclev1.UpdateEnvironmentResponse{Environment: &tentaclev1.Environment{Name: req.GetName(), Description: req.GetDescription(),
		AutoDeploy: req.GetAutoDeploy(), RequiredTargets: req.GetRequiredTargets()}}, nil
}

// CancelDeployment answers for "dep-done" as for a deployment that had
// already succeeded.
func (f *fakeAdmin) CancelDeployment(ctx context.Context, req *tentaclev1.CancelDeploymentRequest) (*tentaclev1.CancelDeploymentResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	if req.GetId() == "dep-done" {
		d := deployment(tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED)
		d.Id = req.GetId()
		return &tentaclev1.CancelDeploymentResponse{Deployment: d}, nil
	}
	d := deployment(tentaclev1.DeploymentState_DEPLOYMENT_STATE_RUNNING)
	d.CancelRequestedAt = timestamppb.New(t0)
	return &tentaclev1.CancelDeploymentResponse{Deployment: d}, nil
}

func (f *fakeAdmin) Rollback(ctx context.Context, req *tentaclev1.RollbackRequest) (*tentaclev1.RollbackResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	d := deployment(tentaclev1.DeploymentState_DEPLOYMENT_STATE_RUNNING)
	d.Kind, d.Rollout = "rollback", req.GetRollout()
	return &tentaclev1.RollbackResponse{Deployment: d, Tasks: f.tasks, FromVersion: "1.5.0"}, nil
}

// Each command sends what its flags say, and only what they say.
func TestRolloutFlagsAreSent(t *testing.T) {
	t.Parallel()
	rolling := &tentaclev1.Rollout{Window: 2, Pause: durationpb.New(30 * time.Second), FailurePolicy: "continue"}
	tests := []struct {
		args []string
		want proto.Message
	}{
		{[]string{"deploy", "--app", "web", "--release", "1.4.2", "--env", "prod", "--window", "2", "--pause", "30s", "--on-failure", "continue"},
			&tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.4.2", Environment: "prod", Rollout: rolling}},
		{[]string{"deploy", "--app", "web", "--release", "1.4.2", "--env", "prod", "--missing"},
			&tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.4.2", Environment: "prod", MissingOnly: true}},
		{[]string{"app", "create", "web", "--image", "r.io/team/web", "--window", "1", "--on-failure", "halt"},
			&tentaclev1.CreateApplicationRequest{Name: "web", ImageRepository: "r.io/team/web", Rollout: &tentaclev1.Rollout{Window: 1, FailurePolicy: "halt"},
				RunSpec: &tentaclev1.RunSpec{ReadyAfter: durationpb.New(10 * time.Second), StopTimeout: durationpb.New(10 * time.Second), RestartPolicy: "unless-stopped"}}},
		{[]string{"rollback", "web", "--env", "prod", "--window", "2", "--pause", "30s", "--on-failure", "continue"},
			&tentaclev1.RollbackRequest{Application: "web", Environment: "prod", Rollout: rolling}},
		{[]string{"env", "create", "test", "--auto-deploy", "--required-targets", "2"},
			&tentaclev1.CreateEnvironmentRequest{Name: "test", AutoDeploy: true, RequiredTargets: 2}},
		{[]string{"env", "update", "test", "--auto-deploy=false"},
			&tentaclev1.UpdateEnvironmentRequest{Name: "test", AutoDeploy: proto.Bool(false)}},
		{[]string{"env", "update", "prod", "--required-targets", "0", "--description", ""},
			&tentaclev1.UpdateEnvironmentRequest{Name: "prod", RequiredTargets: proto.Int32(0), Description: proto.String("")}},
		{[]string{"deployment", "cancel", "dep-1"}, &tentaclev1.CancelDeploymentRequest{Id: "dep-1"}},
	}
	for _, tt := range tests {
		h := newHarness(t, &fakeAdmin{})
		r := h.run(t, tt.args...)
		wantCode(t, r, 0)
		wantRequest(t, h.fake, tt.want)
	}
}

func TestRolloutCommandsOutput(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	r := h.run(t, "env", "update", "test", "--auto-deploy", "--required-targets", "3")
	wantCode(t, r, 0)
	wantOutput(t, r.stdout, "updated environment test: auto-deploy yes, required targets 3, description \"\"\n")

	r = h.run(t, "deployment", "cancel", "dep-1")
	wantCode(t, r, 0)
	wantOutput(t, r.stdout, ""+
		"cancelling deployment dep-1: tasks not started are cancelled, running ones stop and restore the previous container\n"+
		"follow it: tentaclectl deployment show dep-1\n")

	// Too late to cancel: said, with the way to undo, and exit 1.
	r = h.run(t, "deployment", "cancel", "dep-done")
	wantCode(t, r, 1)
	wantOutput(t, r.stderr, "tentaclectl: deployment dep-done already succeeded: nothing to cancel (to undo a release, tentaclectl rollback web --env prod)\n")

	// The id alone on stdout, for scripts; what happens on stderr.
	r = h.run(t, "rollback", "web", "--env", "prod")
	wantCode(t, r, 0)
	wantOutput(t, r.stdout, "dep-1\n")
	wantOutput(t, r.stderr, "rolling web back in prod from 1.5.0 to 1.4.2\n")
}

// A rollback followed with --wait ends like a deployment: exit 1 and the
// reasons when it did not succeed.
func TestRollbackWaitFailed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{
		tasks: []*tentaclev1.Task{task("task-1", "web-1", queued, noFailure, ""), task("task-2", "web-22", queued, noFailure, "")},
		watch: watchScript(tentaclev1.DeploymentState_DEPLOYMENT_STATE_CANCELLED,
			task("task-2", "web-22", tentaclev1.TaskState_TASK_STATE_CANCELLED, noFailure, "cancelled by alice"),
			event("task-2", 3, tentaclev1.TaskState_TASK_STATE_CANCELLED, "cancelled by alice")),
	})
	r := h.run(t, "rollback", "web", "--env", "prod", "--wait")
	wantCode(t, r, 1)
	wantOutput(t, r.stdout, ""+
		"rolling web back in prod from 1.5.0 to 1.4.2\n"+
		"deployment dep-1: web 1.4.2 to prod, 2 tasks\n"+
		"03:04:06  web-1   pulling    pulling r.io/team/web:1.4.2\n"+
		"03:04:06  web-22  pulling    pulling r.io/team/web:1.4.2\n"+
		"03:04:10  web-1   succeeded  running sha256:ab\n"+
		"03:04:08  web-22  cancelled  cancelled by alice\n"+
		"deployment dep-1 cancelled: 1 of 2 tasks succeeded\n"+
		"  web-22  task task-2  cancelled: cancelled by alice\n"+
		"hint: tentaclectl logs task-2 shows a task's log\n")
}

// Bad rollout and environment flags are refused before any call, naming
// the flag and what to give instead.
func TestRolloutBadInput(t *testing.T) {
	t.Parallel()
	deploy := []string{"deploy", "--app", "web", "--release", "1.4.2", "--env", "prod"}
	tests := []refusal{
		{append(deploy, "--window", "-1"), "--window -1: use 0 (all targets at once) or a number of targets per wave"},
		{append(deploy, "--window", "2", "--pause", "-5s"), "--pause -5s: use a duration from 0 to 24h, e.g. 30s"},
		{append(deploy, "--window", "2", "--pause", "25h"), "--pause 25h0m0s: use a duration from 0 to 24h, e.g. 30s"},
		{append(deploy, "--on-failure", "retry"), `--on-failure "retry": use halt or continue`},
		{[]string{"app", "create", "web", "--image", "team/web", "--on-failure", "stop"}, `--on-failure "stop": use halt or continue`},
		{[]string{"rollback", "web", "--env", "prod", "--window", "-2"}, "--window -2: use 0 (all targets at once) or a number of targets per wave"},
		{[]string{"rollback", "Web", "--env", "prod"}, `application name: invalid name "Web": use 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit`},
		{[]string{"env", "create", "test", "--required-targets", "-1"}, "--required-targets -1: use 0 (all targets) or a number of targets"},
		{[]string{"env", "update", "test", "--required-targets", "-3"}, "--required-targets -3: use 0 (all targets) or a number of targets"},
		{[]string{"status", "--env", "Prod"}, `--env: invalid name "Prod": use 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit`},
	}
	h := newHarness(t, &fakeAdmin{})
	wantRefusals(t, h, tests, "See 'tentaclectl ")
	usage := []refusal{
		{[]string{"env", "update", "test"}, "nothing to change: give --description, --auto-deploy or --required-targets"},
		{[]string{"rollback", "web"}, `required flag(s) "env" not set`},
		{[]string{"rollback", "--env", "prod"}, "missing APP"},
		{[]string{"deployment", "cancel"}, "missing ID"},
		{[]string{"env", "update", "test", "--auto-deploy=maybe"}, `invalid argument "maybe" for "--auto-deploy" flag: strconv.ParseBool: parsing "maybe": invalid syntax`},
	}
	wantRefusals(t, h, usage, "Usage:")
	if n := h.fake.count(); n != 0 {
		t.Errorf("server got %d requests for bad input", n)
	}
}

// Rollout flags on deploy and rollback are laid over the application's
// rollout: a flag not given keeps the application's value.
func TestRolloutFlagsOverTheApplications(t *testing.T) {
	t.Parallel()
	app := &tentaclev1.Application{Name: "web", ImageRepository: "r.io/team/web",
		Rollout: &tentaclev1.Rollout{Window: 2, Pause: durationpb.New(time.Minute), FailurePolicy: "continue"}}
	tests := []struct {
		args []string
		want *tentaclev1.Rollout
	}{
		{[]string{"--pause", "1s"}, &tentaclev1.Rollout{Window: 2, Pause: durationpb.New(time.Second), FailurePolicy: "continue"}},
		{[]string{"--on-failure", "halt"}, &tentaclev1.Rollout{Window: 2, Pause: durationpb.New(time.Minute), FailurePolicy: "halt"}},
		// --window 0: all at once, the application's pause dropped with its waves.
		{[]string{"--window", "0"}, &tentaclev1.Rollout{FailurePolicy: "continue"}},
	}
	for _, tt := range tests {
		for _, cmd := range [][]string{{"deploy", "--app", "web", "--release", "1.4.2", "--env", "prod"}, {"rollback", "web", "--env", "prod"}} {
			h := newHarness(t, &fakeAdmin{apps: []*tentaclev1.Application{app}})
			wantCode(t, h.run(t, append(cmd, tt.args...)...), 0)
			h.fake.mu.Lock()
			last := h.fake.requests[len(h.fake.requests)-1]
			h.fake.mu.Unlock()
			var got *tentaclev1.Rollout
			switch req := last.(type) {
			case *tentaclev1.CreateDeploymentRequest:
				got = req.GetRollout()
			case *tentaclev1.RollbackRequest:
				got = req.GetRollout()
			}
			if !proto.Equal(got, tt.want) {
				t.Errorf("%s %v sent rollout %v, want %v", cmd[0], tt.args, got, tt.want)
			}
		}
	}

	// An application without waves: a pause alone is refused, and nothing
	// is deployed.
	h := newHarness(t, &fakeAdmin{apps: []*tentaclev1.Application{{Name: "web", ImageRepository: "r.io/team/web"}}})
	r := h.run(t, "deploy", "--app", "web", "--release", "1.4.2", "--env", "prod", "--pause", "30s")
	wantCode(t, r, 2)
	if !strings.HasPrefix(r.stderr, "tentaclectl: --pause 30s needs --window: with all targets in one wave there is nothing to pause between") {
		t.Errorf("stderr: %s", r.stderr)
	}
	h.fake.mu.Lock()
	defer h.fake.mu.Unlock()
	for _, req := range h.fake.requests {
		if _, ok := req.(*tentaclev1.CreateDeploymentRequest); ok {
			t.Error("a deployment was created although its rollout was refused")
		}
	}
}

// refusal is a command line and the first line of the error it gets.
type refusal struct {
	args []string
	want string
}

// wantRefusals runs each command line and checks that it exits 2 with its
// error, followed by a line containing then (usage, or a pointer to --help).
func wantRefusals(t *testing.T, h *harness, tests []refusal, then string) {
	t.Helper()
	for _, tt := range tests {
		r := h.run(t, tt.args...)
		if r.code != 2 {
			t.Errorf("%q: exit code %d, want 2", tt.args, r.code)
		}
		first, rest, _ := strings.Cut(r.stderr, "\n")
		if want := "tentaclectl: " + tt.want; first != want {
			t.Errorf("%q: stderr\n got: %s\nwant: %s", tt.args, first, want)
		}
		if !strings.Contains(rest, then) {
			t.Errorf("%q: no %q after the error:\n%s", tt.args, then, r.stderr)
		}
	}
}
