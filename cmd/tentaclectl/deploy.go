package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tentacle-deploy/tentacle/internal/spec"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

func (c *cli) newDeployCmd() *cobra.Command {
	var app, release, env, unavailable string
	var wait, force, missing bool
	var deadline time.Duration
	var rollout rolloutFlags
	cmd := &cobra.Command{
		Use:   "deploy --app APP --release VERSION --env ENV [--wait] [--window N --pause D --on-failure halt|continue] [--missing] [--deadline D] [--unavailable wait|skip|fail]",
		Short: "Deploy a release to an environment",
		Long: `Deploy a release of an application to every target of an environment, and
print the deployment's id.

Environments form a lifecycle in the order they were created (env list shows
it): a release deploys to an environment only after it succeeded in the one
before. --force skips that check; it needs role admin and is audited.

--window N rolls the release out N targets at a time (a wave), waiting
--pause between waves; --on-failure halt (the default) stops the waves not
yet started when a task fails, continue goes on. The application's rollout
(app create sets it) applies, with these flags laid over it: --pause 1m alone
keeps the application's window. --missing deploys only to
the targets that do not already run the release successfully, e.g. a target
that joined later, and to those where the application drifted: its
container was stopped, removed or replaced by hand since it was deployed
(tentaclectl status shows drift).

--unavailable says what to do with targets that have no session with the
server when the deployment is created (the agent is stopped, or the link is
down): wait (the default) queues their tasks, which run when the target
returns or fail at the deadline; skip leaves them out (the deployment lists
them as skipped, and is refused if no target is left); fail fails their tasks
at once as target-unavailable, and --on-failure decides what happens to the
rest (halt, the default, stops the tasks not yet sent).

--deadline D bounds how long the deployment waits for its targets: a task
whose agent has not taken it D after the deployment was created (the target
was offline, or its wave had not started) fails as target-unavailable, and
with --on-failure halt the rollout halts. Tasks already running are not
affected. Without it the server's default applies (tentacle-server serve
--deployment-deadline, 1h unless set).

With --wait, follow the deployment until it ends. On a terminal, one line per
target is redrawn in place: its state, wave, a pull progress bar and its latest
message. Otherwise (a pipe, a CI log) a line is printed per change: each task
event (time, target, state, message), a state the server changed (a wave
starting, a halt) and each further tenth of a pull. Then a summary follows.
The exit code is 0 if the deployment succeeded and 1 if it failed or was
cancelled, with the reason of each task that did not succeed. Ctrl-C stops
watching; the deployment goes on (deployment cancel stops it). If the
connection breaks (a server restart), watching resumes once the server is back
within --timeout.

With -o json, stdout gets one JSON document (the created deployment, or with
--wait its final state and every event) and progress goes to stderr.`,
		Example: `  tentaclectl deploy --app web --release 1.4.2 --env prod --wait

  # Two targets at a time, a minute apart, stopping at the first failure
  tentaclectl deploy --app web --release 1.4.2 --env prod --window 2 --pause 1m --wait

  # Leave out the targets that are down; put right containers changed by hand
  tentaclectl deploy --app web --release 1.4.2 --env prod --unavailable skip --wait
  tentaclectl deploy --app web --release 1.4.2 --env prod --missing --wait

  # In a script
  id=$(tentaclectl deploy --app web --release 1.4.2 --env test)
  tentaclectl deployment show "$id"`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := spec.ValidateName("--app", app); err != nil {
				return badValue("%v", err)
			}
			if err := spec.ValidateName("--env", env); err != nil {
				return badValue("%v", err)
			}
			if release == "" {
				return badValue("--release is empty: give the release version, see tentaclectl release list --app %s", app)
			}
			if err := rollout.check(); err != nil {
				return err
			}
			req := &tentaclev1.CreateDeploymentRequest{
				Application: app, ReleaseVersion: release, Environment: env, Force: force, MissingOnly: missing,
			}
			// Unset, the server waits: the request stays as older servers
			// know it.
			if cmd.Flags().Changed("unavailable") {
				policy, err := parseUnavailable(unavailable)
				if err != nil {
					return badValue("%v", err)
				}
				req.UnavailableTargets = policy
			}
			if cmd.Flags().Changed("deadline") {
				if deadline < time.Second || deadline > maxDeadline {
					return badValue("--deadline %s: use 1s to 168h (7 days), e.g. 30m, or leave it out for the server's default", deadline)
				}
				req.Deadline = durationpb.New(deadline)
			}
			resp, conn, err := callKeeping(c, cmd, func(ctx context.Context, admin tentaclev1.AdminServiceClient) (*tentaclev1.CreateDeploymentResponse, error) {
				var err error
				if req.Rollout, err = rollout.withBase(ctx, cmd, admin, app); err != nil {
					return nil, err
				}
				return admin.CreateDeployment(ctx, req)
			})
			if err != nil {
				return err
			}
			defer conn.Close()
			d := resp.GetDeployment()
			if len(resp.GetTasks()) == 0 {
				fmt.Fprintf(c.stderr, "tentaclectl: warning: deployment %s has no tasks: no target in environment %s\n", cell(d.GetId()), env)
			}
			if skipped := d.GetSkippedTargets(); len(skipped) > 0 {
				fmt.Fprintf(c.stderr, "tentaclectl: skipped %d unavailable target(s) without a session: %s\n", len(skipped), cell(strings.Join(skipped, ", ")))
			}
			if !wait {
				if c.output == "json" {
					return c.printJSON(resp)
				}
				_, err := fmt.Fprintln(c.stdout, d.GetId())
				return err
			}
			return c.watchDeployment(cmd.Context(), conn, d, resp.GetTasks())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&app, "app", "", "application (required)")
	fl.StringVar(&release, "release", "", "release version, as in release list (required)")
	fl.StringVar(&env, "env", "", "environment (required)")
	fl.BoolVar(&wait, "wait", false, "follow the deployment until it finishes; exit 1 if it failed or was cancelled")
	fl.BoolVar(&force, "force", false, "deploy even if the release has not succeeded in the previous environment (role admin; audited)")
	fl.BoolVar(&missing, "missing", false, "only to the targets that do not already run the release successfully, or where its container drifted (stopped, removed or replaced by hand)")
	fl.StringVar(&unavailable, "unavailable", "wait", "targets without a session: wait (queue their tasks), skip (leave them out) or fail (fail their tasks at once)")
	fl.DurationVar(&deadline, "deadline", 0, "fail the tasks whose target has not taken them this long after the deployment starts, e.g. 30m (default: the server's, 1h unless set)")
	rollout.add(cmd, "(default: the application's rollout)")
	for _, name := range []string{"app", "release", "env"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// watchDeployment follows the deployment until the server ends the stream,
// which it does once the deployment has finished.
func (c *cli) watchDeployment(ctx context.Context, conn *connection, d *tentaclev1.Deployment, tasks []*tentaclev1.Task) error {
	id := d.GetId()
	// Progress is for humans; with -o json it must stay off stdout.
	progress := c.stdout
	if c.output == "json" {
		progress = c.stderr
	}
	count := fmt.Sprintf("%d tasks", len(tasks))
	if len(tasks) == 1 {
		count = "1 task"
	}
	view := newProgressView(c, progress, tasks)
	if !view.tty() {
		how := ""
		if r := d.GetRollout(); r.GetWindow() > 0 {
			how = ", " + formatRollout(r)
		}
		fmt.Fprintf(progress, "deployment %s: %s %s to %s, %s%s\n",
			cell(id), cell(d.GetApplication()), cell(d.GetReleaseVersion()), cell(d.GetEnvironment()), count, how)
	}

	final := &tentaclev1.WatchDeploymentResponse{Deployment: d, Tasks: tasks}
	r := &reconnector{conn: conn, stderr: c.stderr}
	for {
		err := func() error {
			stream, err := conn.admin.WatchDeployment(ctx, &tentaclev1.WatchDeploymentRequest{Id: id})
			if err != nil {
				return err
			}
			for {
				msg, err := stream.Recv()
				if err != nil {
					return err
				}
				r.progressed()
				view.update(final, msg)
			}
		}()
		if errors.Is(err, io.EOF) {
			break
		}
		if ctx.Err() != nil {
			fmt.Fprintf(c.stderr, "\nstopped watching; deployment %s goes on.\n  follow it: tentaclectl deployment show %s\n  cancel it: tentaclectl deployment cancel %s\n", cell(id), cell(id), cell(id))
			return exitCode(exitInterrupted)
		}
		view.detach() // the reconnect notice went below the frame
		if !r.retry(ctx, err) {
			return fmt.Errorf("watching deployment %s: %w", id, conn.explain(err))
		}
	}

	state := final.GetDeployment().GetState()
	switch state {
	case tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED, tentaclev1.DeploymentState_DEPLOYMENT_STATE_FAILED, tentaclev1.DeploymentState_DEPLOYMENT_STATE_CANCELLED:
	default:
		return fmt.Errorf("the server ended the watch while deployment %s is %s; see tentaclectl deployment show %s", id, deploymentState(state), id)
	}
	c.printSummary(progress, final)
	if c.output == "json" {
		if err := c.printJSON(final); err != nil {
			return err
		}
	}
	if state != tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED {
		return exitCode(1)
	}
	return nil
}

func (c *cli) formatClock(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "--:--:--"
	}
	return ts.AsTime().In(c.loc).Format("15:04:05")
}

// printSummary says how the deployment ended and, if it did not succeed,
// why each task that did not succeed ended as it did and where to read more.
func (c *cli) printSummary(w io.Writer, final *tentaclev1.WatchDeploymentResponse) {
	d := final.GetDeployment()
	var ok int
	var failed []*tentaclev1.Task
	for _, t := range final.GetTasks() {
		if t.GetState() == tentaclev1.TaskState_TASK_STATE_SUCCEEDED {
			ok++
		} else {
			failed = append(failed, t)
		}
	}
	fmt.Fprintf(w, "deployment %s %s: %d of %d tasks succeeded\n", cell(d.GetId()), deploymentState(d.GetState()), ok, len(final.GetTasks()))
	if d.GetState() == tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED || len(failed) == 0 {
		return
	}
	tw := newTable(w)
	for _, t := range failed {
		reason := taskState(t.GetState())
		if k := t.GetFailureKind(); k != tentaclev1.FailureKind_FAILURE_KIND_UNSPECIFIED {
			reason = failureKind(k)
		}
		msg := cell(t.GetMessage())
		if !strings.HasPrefix(msg, reason+":") { // the server's "halted: …" says it already
			msg = reason + ": " + msg
		}
		row(tw, "  "+cell(t.GetTargetName()), "task "+cell(t.GetId()), msg)
	}
	tw.Flush()
	fmt.Fprintf(w, "hint: tentaclectl logs %s shows a task's log\n", cell(failed[0].GetId()))
}

// parseUnavailable reads --unavailable.
func parseUnavailable(s string) (tentaclev1.UnavailableTargets, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "wait":
		return tentaclev1.UnavailableTargets_UNAVAILABLE_TARGETS_WAIT, nil
	case "skip":
		return tentaclev1.UnavailableTargets_UNAVAILABLE_TARGETS_SKIP, nil
	case "fail":
		return tentaclev1.UnavailableTargets_UNAVAILABLE_TARGETS_FAIL, nil
	}
	return tentaclev1.UnavailableTargets_UNAVAILABLE_TARGETS_UNSPECIFIED, fmt.Errorf("--unavailable %q: use wait (queue tasks until the target returns), skip (leave such targets out) or fail (fail their tasks at once)", s)
}
