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

func (c *cli) newEnvCmd() *cobra.Command {
	return groupCmd("env", "Create, change and list environments (dev, test, prod, …)",
		c.newEnvCreateCmd(), c.newEnvUpdateCmd(), c.newEnvListCmd("list"))
}

// envSettings are the flags env create and env update share.
type envSettings struct {
	description     string
	autoDeploy      bool
	requiredTargets int
}

func (e *envSettings) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&e.description, "description", "", "what the environment is for")
	fl.BoolVar(&e.autoDeploy, "auto-deploy", false, "a target that joins gets the current release of every application whose roles it has")
	fl.IntVar(&e.requiredTargets, "required-targets", 0, "targets that must run a release successfully here before it may go to the next environment (0: all)")
}

// check validates the environment's name and the flags.
func (e *envSettings) check(name string) error {
	if err := spec.ValidateName("environment name", name); err != nil {
		return badValue("%v", err)
	}
	if e.requiredTargets < 0 {
		return badValue("--required-targets %d: use 0 (all targets) or a number of targets", e.requiredTargets)
	}
	return nil
}

// envLifecycle says what an environment does beyond holding targets.
func envLifecycle(e *tentaclev1.Environment) (auto, required string) {
	auto = "no"
	if e.GetAutoDeploy() {
		auto = "yes"
	}
	required = "all"
	if n := e.GetRequiredTargets(); n > 0 {
		required = fmt.Sprint(n)
	}
	return auto, required
}

func (c *cli) newEnvCreateCmd() *cobra.Command {
	var set envSettings
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an environment",
		Long: `Create an environment, a stage that releases are deployed to.

NAME is 1-63 lowercase letters, digits, '.', '_' or '-', starting with a
letter or digit. Environments form the lifecycle in the order they are
created: a release reaches one after it succeeded in the one before, on all
its targets or on --required-targets of them.`,
		Example: `  tentaclectl env create prod --description "Production, EU"

  # New targets get the current releases without a deploy; promote after 2 targets
  tentaclectl env create test --auto-deploy --required-targets 2`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := set.check(args[0]); err != nil {
				return err
			}
			req := &tentaclev1.CreateEnvironmentRequest{Name: args[0], Description: set.description,
				AutoDeploy: set.autoDeploy, RequiredTargets: int32(set.requiredTargets)}
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
	set.add(cmd)
	return cmd
}

func (c *cli) newEnvUpdateCmd() *cobra.Command {
	var set envSettings
	cmd := &cobra.Command{
		Use:   "update NAME [--description D] [--auto-deploy=true|false] [--required-targets K]",
		Short: "Change an environment's description, auto-deploy or required targets",
		Long: `Change the settings of an environment. Only the flags given are changed;
--auto-deploy=false turns auto-deploy off.`,
		Example: `  tentaclectl env update test --auto-deploy=false
  tentaclectl env update prod --required-targets 0 --description "Production, all targets"`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := set.check(args[0]); err != nil {
				return err
			}
			req := &tentaclev1.UpdateEnvironmentRequest{Name: args[0]}
			fl := cmd.Flags()
			if fl.Changed("description") {
				req.Description = &set.description
			}
			if fl.Changed("auto-deploy") {
				req.AutoDeploy = &set.autoDeploy
			}
			if fl.Changed("required-targets") {
				n := int32(set.requiredTargets)
				req.RequiredTargets = &n
			}
			if req.Description == nil && req.AutoDeploy == nil && req.RequiredTargets == nil {
				return usageError{err: errors.New("nothing to change: give --description, --auto-deploy or --required-targets"), showUsage: true}
			}
			resp, err := call(c, cmd, func(ctx context.Context, admin tentaclev1.AdminServiceClient) (*tentaclev1.UpdateEnvironmentResponse, error) {
				return admin.UpdateEnvironment(ctx, req)
			})
			if err != nil {
				return err
			}
			return c.render(resp, func(w io.Writer) {
				e := resp.GetEnvironment()
				auto, required := envLifecycle(e)
				fmt.Fprintf(w, "updated environment %s: auto-deploy %s, required targets %s, description %q\n",
					cell(e.GetName()), auto, required, e.GetDescription())
			})
		},
	}
	set.add(cmd)
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
				row(w, "NAME", "AUTO-DEPLOY", "REQUIRED", "DESCRIPTION", "CREATED")
				for _, e := range resp.GetEnvironments() {
					auto, required := envLifecycle(e)
					row(w, cell(e.GetName()), auto, required, cell(e.GetDescription()), c.formatTime(e.GetCreatedAt()))
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
