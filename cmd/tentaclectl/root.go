package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// cli is one invocation: where it writes, how it reads its environment, and
// the global flags. Nothing is global so tests can run many in parallel.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	userConfigDir  func() (string, error)
	now            func() time.Time
	loc            *time.Location
	// terminal reports the size of the terminal w is, ok false when w is
	// not one (tests set it to draw frames into a buffer).
	terminal func(w io.Writer) (width, height int, ok bool)

	// Global flags.
	server, token, caFile, configPath, output string
	timeout                                   time.Duration
}

func newCLI(stdout, stderr io.Writer) *cli {
	return &cli{
		stdin: os.Stdin, stdout: stdout, stderr: stderr,
		getenv: os.Getenv, userConfigDir: os.UserConfigDir,
		now: time.Now, loc: time.Local, terminal: fileTerminal,
	}
}

func fileTerminal(w io.Writer) (width, height int, ok bool) {
	f, isFile := w.(*os.File)
	if !isFile {
		return 0, 0, false
	}
	return terminalSize(f)
}

// usageError is a command line the user has to change: exit code 2. With
// showUsage the command's usage follows the message (wrong arguments or
// unknown flags); without it a pointer to --help does (a bad flag value,
// where the message already names the flag).
type usageError struct {
	err       error
	showUsage bool
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// badValue reports a flag or argument value rejected before calling the server.
func badValue(format string, args ...any) error {
	return usageError{err: fmt.Errorf(format, args...)}
}

// exitCode ends the run with code after the command has already told the user
// why (a failed deployment, an interrupted watch).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }

// exitInterrupted is the shell's code for a process stopped by SIGINT.
const exitInterrupted = 130

func (c *cli) run(ctx context.Context, args []string) int {
	root := c.newRootCmd()
	root.SetArgs(args)
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	var code exitCode
	var usage usageError
	switch {
	case errors.As(err, &code):
		return int(code)
	case ctx.Err() != nil:
		// Ctrl-C: the user knows why we stopped.
		return exitInterrupted
	case errors.As(err, &usage):
		fmt.Fprintf(c.stderr, "tentaclectl: %v\n", err)
		if usage.showUsage {
			fmt.Fprintf(c.stderr, "\n%s", cmd.UsageString())
		} else {
			fmt.Fprintf(c.stderr, "See '%s --help'.\n", cmd.CommandPath())
		}
		return 2
	default:
		fmt.Fprintf(c.stderr, "tentaclectl: %v\n", err)
		return 1
	}
}

func (c *cli) newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "tentaclectl",
		Short: "Manage Tentacle: environments, applications, releases and deployments",
		Long: `tentaclectl talks to a Tentacle server's admin API.

Settings come from flags, then the environment (TENTACLE_SERVER, TENTACLE_TOKEN,
TENTACLE_CA_FILE), then the config file, then defaults. The config file is YAML
with the keys server, token and ca_file (a relative ca_file is relative to the
config file); by default it is tentacle/tentaclectl.yaml in your user config
directory (on Linux $XDG_CONFIG_HOME or ~/.config).`,
		Example: `  # Trust the dev server's CA and list environments
  export TENTACLE_CA_FILE=./ca.pem TENTACLE_TOKEN=...
  tentaclectl env list

  # Ship version 1.4.2 of web to prod and wait for the outcome
  tentaclectl release create --app web --tag 1.4.2
  tentaclectl deploy --app web --release 1.4.2 --env prod --wait`,
		Args:              unknownCommand,
		RunE:              showHelp,
		SilenceErrors:     true,
		SilenceUsage:      true,
		PersistentPreRunE: c.checkGlobalFlags,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return usageError{err: err, showUsage: true}
	})
	f := root.PersistentFlags()
	f.StringVar(&c.server, "server", "", `admin API address HOST:PORT (default "localhost:8443")`)
	f.StringVar(&c.token, "token", "", "admin bearer token (prefer TENTACLE_TOKEN: flags show up in ps)")
	f.StringVar(&c.caFile, "ca-file", "", "PEM bundle of CA certificates to trust for the server (default: the system roots)")
	f.StringVar(&c.configPath, "config", "", "config file (default tentacle/tentaclectl.yaml in the user config directory)")
	f.StringVarP(&c.output, "output", "o", "table", "output format: table or json")
	f.DurationVar(&c.timeout, "timeout", 30*time.Second, "time limit of each call; streams (deploy --wait, logs) are limited only while connecting")

	root.AddGroup(
		&cobra.Group{ID: "setup", Title: "Setting up:"},
		&cobra.Group{ID: "deploy", Title: "Deploying:"},
		&cobra.Group{ID: "fleet", Title: "Targets:"},
		&cobra.Group{ID: "access", Title: "Access:"},
	)
	add := func(group string, cmds ...*cobra.Command) {
		for _, cmd := range cmds {
			cmd.GroupID = group
			root.AddCommand(cmd)
		}
	}
	add("setup", c.newEnvCmd(), c.newEnvListCmd("envs"), c.newAppCmd(), c.newAppListCmd("apps"),
		c.newReleaseCmd(), c.newReleaseListCmd("releases"), c.newVarCmd())
	add("deploy", c.newStatusCmd(), c.newDeployCmd(), c.newRollbackCmd(), c.newDeploymentsCmd(), c.newDeploymentCmd(), c.newTasksCmd(), c.newLogsCmd())
	add("fleet", c.newTargetsCmd())
	add("access", c.newTokenCmd(), c.newTargetCmd(), c.newAdminTokenCmd(), c.newAuditCmd())
	root.AddCommand(c.newVersionCmd())
	return root
}

func (c *cli) checkGlobalFlags(cmd *cobra.Command, _ []string) error {
	if c.output != "table" && c.output != "json" {
		return badValue("--output %q: use table or json", c.output)
	}
	if c.timeout <= 0 {
		return badValue("--timeout %s: must be positive", c.timeout)
	}
	// Cobra checks required flags after this hook with a plain error; checking
	// here first turns a missing flag into a usage error (exit 2).
	if err := cmd.ValidateRequiredFlags(); err != nil {
		return usageError{err: err, showUsage: true}
	}
	return nil
}

// groupCmd is a command that only holds subcommands, like "env".
func groupCmd(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Args: unknownCommand, RunE: showHelp}
	cmd.AddCommand(subs...)
	return cmd
}

func showHelp(cmd *cobra.Command, _ []string) error { return cmd.Help() }

// unknownCommand replaces cobra's check for commands with subcommands, whose
// error would not be a usageError and which lets "env bogus" print help and
// exit 0.
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's own default, which SuggestionsFor does not apply
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %s?", strings.Join(s, " or "))
	}
	return usageError{err: errors.New(msg), showUsage: true}
}

// exactArgs accepts exactly the named positional arguments.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < len(names):
			return usageError{err: fmt.Errorf("missing %s", strings.Join(names[len(args):], " ")), showUsage: true}
		case len(args) > len(names):
			return usageError{err: fmt.Errorf("unexpected argument %q", args[len(names)]), showUsage: true}
		}
		return nil
	}
}

func (c *cli) newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of tentaclectl",
		Args:  exactArgs(),
		RunE: func(*cobra.Command, []string) error {
			return c.printVersion()
		},
	}
}
