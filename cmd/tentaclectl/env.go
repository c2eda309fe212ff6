package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/tentacle-deploy/tentacle/internal/spec"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

func (c *cli) newEnvCmd() *cobra.Command {
	return groupCmd("env", "Create and list environments (dev, test, prod, …)",
		c.newEnvCreateCmd(), c.newEnvListCmd("list"))
}

func (c *cli) newEnvCreateCmd() *cobra.Command {
	var description string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an environment",
		Long: `Create an environment, a stage that releases are deployed to.

NAME is 1-63 lowercase letters, digits, '.', '_' or '-', starting with a
letter or digit.`,
		Example: `  tentaclectl env create prod --description "Production, EU"`,
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := spec.ValidateName("environment name", args[0]); err != nil {
				return badValue("%v", err)
			}
			req := &tentaclev1.CreateEnvironmentRequest{Name: args[0], Description: description}
			resp, err := call(c, cmd, func(ctx context.Context, admin tentaclev1.AdminServiceClient) (*tentaclev1.CreateEnvironmentResponse, error) {
				return admin.CreateEnvironment(ctx, req)
			})
			if err != nil {
				return err
			}
			return c.render(resp, func(w io.Writer) {
				fmt.Fprintf(w, "created environment %s\n", cell(resp.GetEnvironment().GetName()))
			})
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "what the environment is for")
	return cmd
}

// newEnvListCmd builds "env list", also registered as the shortcut "envs".
func (c *cli) newEnvListCmd(use string) *cobra.Command {
	cmd := &cobra.Command{
		Use:     use,
		Short:   "List environments",
		Example: "  tentaclectl env list\n  tentaclectl envs -o json",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := call(c, cmd, func(ctx context.Context, admin tentaclev1.AdminServiceClient) (*tentaclev1.ListEnvironmentsResponse, error) {
				return admin.ListEnvironments(ctx, &tentaclev1.ListEnvironmentsRequest{})
			})
			if err != nil {
				return err
			}
			return c.render(resp, func(w io.Writer) {
				row(w, "NAME", "DESCRIPTION", "CREATED")
				for _, e := range resp.GetEnvironments() {
					row(w, cell(e.GetName()), cell(e.GetDescription()), c.formatTime(e.GetCreatedAt()))
				}
			})
		},
	}
	if use == "list" {
		cmd.Aliases = []string{"ls"}
	} else {
		cmd.Short += " (same as env list)"
	}
	return cmd
}
