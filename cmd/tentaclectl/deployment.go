package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/tentacle-deploy/tentacle/internal/spec"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

func (c *cli) newDeploymentsCmd() *cobra.Command {
	var app, env string
	var limit int32
	cmd := &cobra.Command{
		Use:     "deployments [--app APP] [--env ENV] [--limit N]",
		Short:   "List deployments, newest first",
		Example: "  tentaclectl deployments --env prod --limit 5",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFilters(app, env); err != nil {
				return err
			}
			if limit < 1 {
				return badValue("--limit %d: must be at least 1", limit)
			}
			req := &tentaclev1.ListDeploymentsRequest{Application: app, Environment: env, Limit: limit}
			resp, err := call(c, cmd, func(ctx context.Context, admin tentaclev1.AdminServiceClient) (*tentaclev1.ListDeploymentsResponse, error) {
				return admin.ListDeployments(ctx, req)
			})
			if err != nil {
				return err
			}
			return c.render(resp, func(w io.Writer) {
				row(w, "ID", "APP", "RELEASE", "ENV", "KIND", "ROLLOUT", "STATE", "CREATED", "FINISHED", "BY")
				for _, d := range resp.GetDeployments() {
					row(w, cell(d.GetId()), cell(d.GetApplication()), cell(d.GetReleaseVersion()), cell(d.GetEnvironment()),
						cell(d.GetKind()), shortRollout(d.GetRollout()), deploymentStateOf(d), c.formatTime(d.GetCreatedAt()),
						c.formatTime(d.GetFinishedAt()), cell(d.GetCreatedBy()))
				}
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&app, "app", "", "only this application's deployments")
	fl.StringVar(&env, "env", "", "only deployments to this environment")
	fl.Int32Var(&limit, "limit", 20, "at most this many deployments")
	return cmd
}

// checkFilters validates the optional --app and --env of a listing.
func checkFilters(app, env string) error {
	for _, f := range [][2]string{{"--app", app}, {"--env", env}} {
		if f[1] == "" {
			continue
		}
		if err := spec.ValidateName(f[0], f[1]); err != nil {
			return badValue("%v", err)
		}
	}
	return nil
}

func (c *cli) newDeploymentCmd() *cobra.Command {
	show := &cobra.Command{
		Use:     "show ID",
		Short:   "Show a deployment and its tasks",
		Example: "  tentaclectl deployment show 0190f6d2-7c3a-7b51-9a55-3f4e0c1d2e3f",
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := call(c, cmd, func(ctx context.Context, admin tentaclev1.AdminServiceClient) (*tentaclev1.GetDeploymentResponse, error) {
				return admin.GetDeployment(ctx, &tentaclev1.GetDeploymentRequest{Id: args[0]})
			})
			if err != nil {
				return err
			}
			return c.render(resp, func(w io.Writer) { c.printDeployment(w, resp) })
		},
	}
	return groupCmd("deployment", "Show or cancel one deployment", show, c.newDeploymentCancelCmd())
}

// deploymentStateOf is the state, with "cancelling" for a running
// deployment whose cancel was asked for.
func deploymentStateOf(d *tentaclev1.Deployment) string {
	if d.GetState() == tentaclev1.DeploymentState_DEPLOYMENT_STATE_RUNNING && d.GetCancelRequestedAt() != nil {
		return "cancelling"
	}
	return deploymentState(d.GetState())
}

// shortRollout fits a rollout into a list column: "all", or "2/wave".
func shortRollout(r *tentaclev1.Rollout) string {
	if r.GetWindow() <= 0 {
		return "all"
	}
	return fmt.Sprintf("%d/wave", r.GetWindow())
}

func (c *cli) printDeployment(w io.Writer, resp *tentaclev1.GetDeploymentResponse) {
	d := resp.GetDeployment()
	row(w, "ID:", cell(d.GetId()))
	row(w, "Application:", cell(d.GetApplication()))
	row(w, "Release:", fmt.Sprintf("%s (release id %s)", cell(d.GetReleaseVersion()), cell(d.GetReleaseId())))
	row(w, "Environment:", cell(d.GetEnvironment()))
	row(w, "Kind:", cell(d.GetKind()))
	row(w, "Rollout:", formatRollout(d.GetRollout()))
	row(w, "State:", deploymentStateOf(d))
	row(w, "Created:", c.formatTime(d.GetCreatedAt())+" by "+cell(d.GetCreatedBy()))
	if at := d.GetDeadlineAt(); at != nil {
		row(w, "Deadline:", c.formatTime(at))
	}
	if at := d.GetCancelRequestedAt(); at != nil {
		row(w, "Cancel asked:", c.formatTime(at))
	}
	row(w, "Finished:", c.formatTime(d.GetFinishedAt()))
	fmt.Fprintln(w)
	c.taskTable(w, resp.GetTasks(), false)
}

// taskTable lists tasks; withDeployment adds the deployment column for lists
// that span deployments.
func (c *cli) taskTable(w io.Writer, tasks []*tentaclev1.Task, withDeployment bool) {
	header := []string{"TASK", "TARGET", "WAVE", "STATE", "FAILURE", "UPDATED", "MESSAGE"}
	if withDeployment {
		header = append([]string{"DEPLOYMENT"}, header...)
	}
	row(w, header...)
	for _, t := range tasks {
		kind := "-"
		if t.GetFailureKind() != tentaclev1.FailureKind_FAILURE_KIND_UNSPECIFIED {
			kind = failureKind(t.GetFailureKind())
		}
		wave := "-"
		if t.GetWave() > 0 {
			wave = fmt.Sprint(t.GetWave())
		}
		cells := []string{cell(t.GetId()), cell(t.GetTargetName()), wave, taskState(t.GetState()), kind, c.formatTime(t.GetUpdatedAt()), cell(t.GetMessage())}
		if withDeployment {
			cells = append([]string{cell(t.GetDeploymentId())}, cells...)
		}
		row(w, cells...)
	}
}

func (c *cli) newTasksCmd() *cobra.Command {
	var deployment string
	cmd := &cobra.Command{
		Use:     "tasks [--deployment ID]",
		Short:   "List tasks, each one target's share of a deployment",
		Example: "  tentaclectl tasks --deployment 0190f6d2-7c3a-7b51-9a55-3f4e0c1d2e3f",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := call(c, cmd, func(ctx context.Context, admin tentaclev1.AdminServiceClient) (*tentaclev1.ListTasksResponse, error) {
				return admin.ListTasks(ctx, &tentaclev1.ListTasksRequest{DeploymentId: deployment})
			})
			if err != nil {
				return err
			}
			return c.render(resp, func(w io.Writer) { c.taskTable(w, resp.GetTasks(), deployment == "") })
		},
	}
	cmd.Flags().StringVar(&deployment, "deployment", "", "only this deployment's tasks")
	return cmd
}
