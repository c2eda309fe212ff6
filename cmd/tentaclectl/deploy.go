package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/tentacle-deploy/tentacle/internal/spec"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

func (c *cli) newDeployCmd() *cobra.Command {
	var app, release, env string
	var wait, force bool
	cmd := &cobra.Command{
		Use:   "deploy --app APP --release VERSION --env ENV [--wait]",
		Short: "Deploy a release to an environment",
		Long: `Deploy a release of an application to every target of an environment, and
print the deployment's id.

Environments form a lifecycle in the order they were created (env list shows
it): a release deploys to an environment only after it succeeded in the one
before. --force skips that check; it needs role admin and is audited.

With --wait, follow the deployment: print each task event as it happens
(time, target, state, message), then a summary. The exit code is 0 if the
deployment succeeded and 1 if it failed, with each failed task's reason.
Ctrl-C stops watching; the deployment goes on. If the connection breaks (a
server restart), watching resumes once the server is back within --timeout.

With -o json, stdout gets one JSON document (the created deployment, or with
--wait its final state and every event) and progress goes to stderr.`,
		Example: `  tentaclectl deploy --app web --release 1.4.2 --env prod --wait

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
			conn, err := c.connect(cmd)
			if err != nil {
				return err
			}
			defer conn.Close()
			ctx, cancel := conn.callContext(cmd.Context())
			defer cancel()
			resp, err := conn.admin.CreateDeployment(ctx, &tentaclev1.CreateDeploymentRequest{
				Application: app, ReleaseVersion: release, Environment: env, Force: force,
			})
			if err != nil {
				return conn.explain(err)
			}
			d := resp.GetDeployment()
			if len(resp.GetTasks()) == 0 {
				fmt.Fprintf(c.stderr, "tentaclectl: warning: deployment %s has no tasks: no target in environment %s\n", cell(d.GetId()), env)
			}
			if !wait {
				if c.output == "json" {
					return c.printJSON(resp)
				}
				_, err := fmt.Fprintln(c.stdout, d.GetId())
				return err
			}
			return c.watchDeployment(cmd.Context(), conn, resp)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&app, "app", "", "application (required)")
	fl.StringVar(&release, "release", "", "release version, as in release list (required)")
	fl.StringVar(&env, "env", "", "environment (required)")
	fl.BoolVar(&wait, "wait", false, "follow the deployment until it finishes; exit 1 if it failed")
	fl.BoolVar(&force, "force", false, "deploy even if the release has not succeeded in the previous environment (role admin; audited)")
	for _, name := range []string{"app", "release", "env"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// watchDeployment prints events until the server ends the stream, which it
// does once the deployment has finished.
func (c *cli) watchDeployment(ctx context.Context, conn *connection, created *tentaclev1.CreateDeploymentResponse) error {
	id := created.GetDeployment().GetId()
	// Progress is for humans; with -o json it must stay off stdout.
	progress := c.stdout
	if c.output == "json" {
		progress = c.stderr
	}
	d := created.GetDeployment()
	tasks := fmt.Sprintf("%d tasks", len(created.GetTasks()))
	if len(created.GetTasks()) == 1 {
		tasks = "1 task"
	}
	fmt.Fprintf(progress, "deployment %s: %s %s to %s, %s\n",
		cell(id), cell(d.GetApplication()), cell(d.GetReleaseVersion()), cell(d.GetEnvironment()), tasks)

	final := &tentaclev1.WatchDeploymentResponse{Deployment: d, Tasks: created.GetTasks()}
	w := &watchPrinter{c: c, out: progress, seen: map[eventKey]bool{}}
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
				w.print(final, msg)
			}
		}()
		if errors.Is(err, io.EOF) {
			break
		}
		if ctx.Err() != nil {
			fmt.Fprintf(c.stderr, "\nstopped watching; deployment %s goes on (tentaclectl deployment show %s)\n", cell(id), cell(id))
			return exitCode(exitInterrupted)
		}
		if !r.retry(ctx, err) {
			return fmt.Errorf("watching deployment %s: %w", id, conn.explain(err))
		}
	}

	state := final.GetDeployment().GetState()
	if state != tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED && state != tentaclev1.DeploymentState_DEPLOYMENT_STATE_FAILED {
		return fmt.Errorf("the server ended the watch while deployment %s is %s; see tentaclectl deployment show %s", id, deploymentState(state), id)
	}
	c.printSummary(progress, final)
	if c.output == "json" {
		if err := c.printJSON(final); err != nil {
			return err
		}
	}
	if state == tentaclev1.DeploymentState_DEPLOYMENT_STATE_FAILED {
		return exitCode(1)
	}
	return nil
}

// eventKey identifies a task event: a re-opened watch sends every event
// again, and each is printed once.
type eventKey struct {
	task     string
	sequence uint64
}

type watchPrinter struct {
	c     *cli
	out   io.Writer
	seen  map[eventKey]bool
	width int // of the target column, so that lines align as they come
}

// print merges msg into final and prints its new events.
func (w *watchPrinter) print(final, msg *tentaclev1.WatchDeploymentResponse) {
	if msg.GetDeployment() != nil {
		final.Deployment = msg.GetDeployment()
	}
	if len(msg.GetTasks()) > 0 {
		final.Tasks = msg.GetTasks()
	}
	targets := map[string]string{}
	for _, t := range final.GetTasks() {
		targets[t.GetId()] = t.GetTargetName()
		w.width = max(w.width, len(cell(t.GetTargetName())))
	}
	for _, e := range msg.GetEvents() {
		key := eventKey{e.GetTaskId(), e.GetSequence()}
		if e.GetSequence() != 0 { // 0 is unset: no way to tell repeats apart
			if w.seen[key] {
				continue
			}
			w.seen[key] = true
		}
		final.Events = append(final.Events, e)
		target := targets[e.GetTaskId()]
		if target == "" {
			target = "task " + e.GetTaskId()
		}
		fmt.Fprintf(w.out, "%s  %-*s  %-9s  %s\n", w.c.formatClock(e), w.width, cell(target), taskState(e.GetState()), cell(e.GetMessage()))
	}
}

func (c *cli) formatClock(e *tentaclev1.TaskEventRecord) string {
	if e.GetOccurredAt() == nil {
		return "--:--:--"
	}
	return e.GetOccurredAt().AsTime().In(c.loc).Format("15:04:05")
}

// printSummary says how the deployment ended and, if it failed, why each
// failed task failed and where to read more.
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
	if d.GetState() != tentaclev1.DeploymentState_DEPLOYMENT_STATE_FAILED || len(failed) == 0 {
		return
	}
	tw := newTable(w)
	for _, t := range failed {
		reason := taskState(t.GetState())
		if k := t.GetFailureKind(); k != tentaclev1.FailureKind_FAILURE_KIND_UNSPECIFIED {
			reason = failureKind(k)
		}
		row(tw, "  "+cell(t.GetTargetName()), "task "+cell(t.GetId()), reason+": "+cell(t.GetMessage()))
	}
	tw.Flush()
	fmt.Fprintf(w, "hint: tentaclectl logs %s shows a task's log\n", cell(failed[0].GetId()))
}
