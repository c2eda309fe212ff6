package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/tentacle-deploy/tentacle/internal/spec"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

func (c *cli) newRollbackCmd() *cobra.Command {
	var env string
	var wait bool
	var rollout rolloutFlags
	cmd := &cobra.Command{
		Use:   "rollback APP --env ENV [--wait] [--window N --pause D --on-failure halt|continue]",
		Short: "Deploy the release that ran in an environment before the current one",
		Long: `Roll APP back in ENV: deploy again the release that succeeded there before
the current one, as a new deployment of kind rollback, and print its id (the
versions it goes from and to are said on stderr). The lifecycle check does not
apply: that release already ran in ENV. It needs role deployer and is audited;
with nothing to roll back to, it is refused.

The rollout flags and --wait work as for deploy: the exit code with --wait is
0 if the rollback succeeded and 1 if it failed or was cancelled.`,
		Example: `  tentaclectl rollback web --env prod --wait

  # One target at a time
  tentaclectl rollback web --env prod --window 1 --wait`,
		Args: exactArgs("APP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			app := args[0]
			if err := spec.ValidateName("application name", app); err != nil {
				return badValue("%v", err)
			}
			if err := spec.ValidateName("--env", env); err != nil {
				return badValue("%v", err)
			}
			if err := rollout.check(); err != nil {
				return err
			}
			req := &tentaclev1.RollbackRequest{Application: app, Environment: env}
			resp, conn, err := callKeeping(c, cmd, func(ctx context.Context, admin tentaclev1.AdminServiceClient) (*tentaclev1.RollbackResponse, error) {
				var err error
				if req.Rollout, err = rollout.withBase(ctx, cmd, admin, app); err != nil {
					return nil, err
				}
				return admin.Rollback(ctx, req)
			})
			if err != nil {
				return err
			}
			defer conn.Close()
			d := resp.GetDeployment()
			// The id alone on stdout, as deploy prints it, for scripts.
			progress := c.stderr
			if wait && c.output != "json" {
				progress = c.stdout
			}
			fmt.Fprintf(progress, "rolling %s back in %s from %s to %s\n", cell(d.GetApplication()), cell(d.GetEnvironment()),
				cell(resp.GetFromVersion()), cell(d.GetReleaseVersion()))
			if wait {
				return c.watchDeployment(cmd.Context(), conn, d, resp.GetTasks())
			}
			if c.output == "json" {
				return c.printJSON(resp)
			}
			_, err = fmt.Fprintln(c.stdout, d.GetId())
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&env, "env", "", "environment (required)")
	fl.BoolVar(&wait, "wait", false, "follow the rollback until it finishes; exit 1 if it failed or was cancelled")
	rollout.add(cmd, "(default: the application's rollout)")
	_ = cmd.MarkFlagRequired("env")
	return cmd
}

func (c *cli) newDeploymentCancelCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a running deployment",
		Long: `Cancel a running deployment: tasks not started yet are cancelled, running
ones are told to stop, and their targets go back to the container they ran
before. The deployment ends cancelled once every task has stopped; follow it
with deployment show. A deployment that has finished cannot be cancelled
(rollback undoes a release). It needs role deployer and is audited.`,
		Example: "  tentaclectl deployment cancel 0190f6d2-7c3a-7b51-9a55-3f4e0c1d2e3f",
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := call(c, cmd, func(ctx context.Context, admin tentaclev1.AdminServiceClient) (*tentaclev1.CancelDeploymentResponse, error) {
				return admin.CancelDeployment(ctx, &tentaclev1.CancelDeploymentRequest{Id: args[0]})
			})
			if err != nil {
				return err
			}
			d := resp.GetDeployment()
			switch d.GetState() {
			case tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED, tentaclev1.DeploymentState_DEPLOYMENT_STATE_FAILED:
				return fmt.Errorf("deployment %s already %s: nothing to cancel (to undo a release, tentaclectl rollback %s --env %s)",
					cell(d.GetId()), deploymentState(d.GetState()), cell(d.GetApplication()), cell(d.GetEnvironment()))
			}
			return c.render(resp, func(w io.Writer) {
				if d.GetState() == tentaclev1.DeploymentState_DEPLOYMENT_STATE_CANCELLED {
					fmt.Fprintf(w, "deployment %s cancelled\n", cell(d.GetId()))
					return
				}
				fmt.Fprintf(w, "cancelling deployment %s: tasks not started are cancelled, running ones stop and restore the previous container\n", cell(d.GetId()))
				fmt.Fprintf(w, "follow it: tentaclectl deployment show %s\n", cell(d.GetId()))
			})
		},
	}
}
