package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tentacle-deploy/tentacle/internal/spec"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

func (c *cli) newVarCmd() *cobra.Command {
	return groupCmd("var", "Set, list and delete an application's variables (container env, per scope)",
		c.newVarSetCmd(), c.newVarListCmd(), c.newVarDeleteCmd())
}

// scopeFlags are the flags that narrow a variable to a scope.
type scopeFlags struct{ env, role, target string }

func (s *scopeFlags) add(cmd *cobra.Command, verb string) {
	fl := cmd.Flags()
	fl.StringVar(&s.env, "env", "", verb+" the value for this environment only")
	fl.StringVar(&s.role, "role", "", verb+" the value for targets with this role only")
	fl.StringVar(&s.target, "target", "", verb+" the value for this target only")
}

// key checks APP and NAME, the arguments every var command starts with,
// and the scope flags, and returns the scope. A target name is checked by
// the server, which knows the targets.
func (s *scopeFlags) key(args []string) (*tentaclev1.VariableScope, error) {
	if err := spec.ValidateName("APP", args[0]); err != nil {
		return nil, badValue("%v", err)
	}
	if !spec.ValidEnvName(args[1]) {
		return nil, badValue("NAME: invalid variable name %q: use letters, digits and _, not starting with a digit", args[1])
	}
	for _, f := range []struct{ flag, v string }{{"--env", s.env}, {"--role", s.role}} {
		if f.v != "" {
			if err := spec.ValidateName(f.flag, f.v); err != nil {
				return nil, badValue("%v", err)
			}
		}
	}
	return &tentaclev1.VariableScope{Environment: s.env, Role: s.role, Target: s.target}, nil
}

func (c *cli) newVarSetCmd() *cobra.Command {
	var scope scopeFlags
	var sensitive, valueStdin bool
	cmd := &cobra.Command{
		Use:   "set APP NAME [VALUE] [--env E] [--role R] [--target T] [--sensitive] [--value-stdin]",
		Short: "Set a variable's value, for all targets or for a scope",
		Long: `Set the value of variable NAME of application APP. Releases created afterwards
take it; running releases keep the variables they were created with.

Without a scope flag the value applies everywhere. --env, --role and --target
narrow it; the most specific value that matches a target wins: target over
role over environment over none, and a role with an environment over either
alone (docs/VARIABLES.md has the table). A value may refer to other variables
and run spec env entries with ${NAME}; write $${ for a literal ${.

--sensitive encrypts the value on the server: it is never shown again, and it
is masked in task logs. A sensitive value given without VALUE is read from
stdin, so that it stays out of your shell history and of ps; one trailing
newline is dropped. --value-stdin reads any value from stdin.`,
		Example: `  tentaclectl var set web LOG_LEVEL info
  tentaclectl var set web LOG_LEVEL debug --env dev
  tentaclectl var set web DATABASE_URL 'postgres://app:${DB_PASSWORD}@db:5432/app' --env prod
  tentaclectl var set web DB_PASSWORD --sensitive --env prod < db-password.txt`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 2 {
				return exactArgs("APP", "NAME", "VALUE")(cmd, args)
			}
			return exactArgs("APP", "NAME")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, err := scope.key(args)
			if err != nil {
				return err
			}
			value, err := c.varValue(args, sensitive, valueStdin)
			if err != nil {
				return err
			}
			req := &tentaclev1.SetVariableRequest{Variable: &tentaclev1.Variable{Application: args[0], Name: args[1], Value: value, Sensitive: sensitive, Scope: sc}}
			resp, err := call(c, cmd, func(ctx context.Context, admin tentaclev1.AdminServiceClient) (*tentaclev1.SetVariableResponse, error) {
				return admin.SetVariable(ctx, req)
			})
			if err != nil {
				return err
			}
			return c.render(resp, func(w io.Writer) {
				v := resp.GetVariable()
				kind := "variable"
				if v.GetSensitive() {
					kind = "sensitive variable"
				}
				fmt.Fprintf(w, "set %s %s of %s (%s)\n", kind, cell(v.GetName()), cell(v.GetApplication()), scopeText(v.GetScope()))
			})
		},
	}
	scope.add(cmd, "set")
	fl := cmd.Flags()
	fl.BoolVar(&sensitive, "sensitive", false, "encrypt the value, never show it again and mask it in logs (VALUE is then read from stdin when not given)")
	fl.BoolVar(&valueStdin, "value-stdin", false, "read the value from stdin (one trailing newline is dropped)")
	return cmd
}

// varValue is VALUE, or stdin with --value-stdin or for a sensitive value
// given without VALUE.
func (c *cli) varValue(args []string, sensitive, fromStdin bool) (string, error) {
	switch {
	case len(args) == 3 && fromStdin:
		return "", badValue("VALUE given with --value-stdin: give one or the other")
	case len(args) == 3:
		if sensitive {
			fmt.Fprintln(c.stderr, "warning: a sensitive VALUE on the command line stays in your shell history and shows in ps: leave it out and pipe it in on stdin")
		}
		return args[2], nil
	case !sensitive && !fromStdin:
		return "", usageError{err: errors.New("missing VALUE: give it, or pass --value-stdin to read it from stdin"), showUsage: true}
	}
	b, err := io.ReadAll(io.LimitReader(c.stdin, 1<<20))
	if err != nil {
		return "", fmt.Errorf("read the value from stdin: %w", err)
	}
	v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if v == "" && sensitive {
		return "", badValue("no value on stdin: pipe the sensitive value in, e.g. tentaclectl var set APP NAME --sensitive < file")
	}
	return v, nil
}

func (c *cli) newVarListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "list APP",
		Aliases: []string{"ls"},
		Short:   "List an application's variables and their scopes",
		Long:    `List the variables of APP, each scoped value on its own row. Sensitive values are never shown.`,
		Example: "  tentaclectl var list web\n  tentaclectl var list web -o json",
		Args:    exactArgs("APP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := spec.ValidateName("APP", args[0]); err != nil {
				return badValue("%v", err)
			}
			resp, err := call(c, cmd, func(ctx context.Context, admin tentaclev1.AdminServiceClient) (*tentaclev1.ListVariablesResponse, error) {
				return admin.ListVariables(ctx, &tentaclev1.ListVariablesRequest{Application: args[0]})
			})
			if err != nil {
				return err
			}
			return c.render(resp, func(w io.Writer) {
				row(w, "NAME", "VALUE", "ENV", "ROLE", "TARGET", "UPDATED", "BY")
				for _, v := range resp.GetVariables() {
					value := cell(v.GetValue())
					if v.GetSensitive() {
						value = "(sensitive)"
					}
					sc := v.GetScope()
					row(w, cell(v.GetName()), value, cell(sc.GetEnvironment()), cell(sc.GetRole()), cell(sc.GetTarget()),
						c.formatTime(v.GetUpdatedAt()), cell(v.GetUpdatedBy()))
				}
			})
		},
	}
	return cmd
}

func (c *cli) newVarDeleteCmd() *cobra.Command {
	var scope scopeFlags
	cmd := &cobra.Command{
		Use:   "delete APP NAME [--env E] [--role R] [--target T]",
		Short: "Delete one scoped value of a variable",
		Long: `Delete the value of NAME with exactly the given scope (none: the unscoped
value). Values with other scopes stay; existing releases keep their copy.`,
		Example: "  tentaclectl var delete web LOG_LEVEL --env dev",
		Args:    exactArgs("APP", "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, err := scope.key(args)
			if err != nil {
				return err
			}
			req := &tentaclev1.DeleteVariableRequest{Application: args[0], Name: args[1], Scope: sc}
			resp, err := call(c, cmd, func(ctx context.Context, admin tentaclev1.AdminServiceClient) (*tentaclev1.DeleteVariableResponse, error) {
				return admin.DeleteVariable(ctx, req)
			})
			if err != nil {
				return err
			}
			return c.render(resp, func(w io.Writer) {
				fmt.Fprintf(w, "deleted variable %s of %s (%s)\n", args[1], args[0], scopeText(sc))
			})
		},
	}
	scope.add(cmd, "delete")
	return cmd
}

// scopeText names a scope for people: "env prod, role web" or "all targets".
func scopeText(sc *tentaclev1.VariableScope) string {
	var parts []string
	for _, p := range [][2]string{{"env", sc.GetEnvironment()}, {"role", sc.GetRole()}, {"target", sc.GetTarget()}} {
		if p[1] != "" {
			parts = append(parts, p[0]+" "+cell(p[1]))
		}
	}
	if len(parts) == 0 {
		return "all targets"
	}
	return strings.Join(parts, ", ")
}
