package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tentacle-deploy/tentacle/internal/spec"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// adminTokenPrefix starts every admin token; see internal/pki.
const adminTokenPrefix = "tntadm_"

func (c *cli) newAdminTokenCmd() *cobra.Command {
	return groupCmd("admin-token", "Create, list and revoke admin API tokens",
		c.newAdminTokenCreateCmd(), c.newAdminTokenListCmd(), c.newAdminTokenRevokeCmd())
}

func (c *cli) newAdminTokenCreateCmd() *cobra.Command {
	var name, role string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "create --name NAME --role viewer|deployer|admin [--ttl 720h]",
		Short: "Create an admin API token",
		Long: `Create a token for the admin API, for a person or a script, named NAME.

--role is what the token may do: viewer lists and shows environments,
applications, releases, deployments, tasks, logs and targets; deployer also
creates releases and deployments; admin may do everything, including managing
tokens and targets and reading the audit log. Without --ttl the token does not
expire.

The token is printed once, on the first line; the server keeps only its hash,
so it cannot be shown again. With -o json the warning goes to stderr.`,
		Example: `  tentaclectl admin-token create --name ci --role deployer --ttl 720h
  tentaclectl admin-token create --name alice --role admin -o json`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := spec.ValidateName("--name", name); err != nil {
				return badValue("%v", err)
			}
			switch role {
			case "viewer", "deployer", "admin":
			default:
				return badValue("--role %q: use viewer, deployer or admin", role)
			}
			req := &tentaclev1.CreateAdminTokenRequest{Name: name, Role: role}
			if cmd.Flags().Changed("ttl") {
				if ttl <= 0 {
					return badValue("--ttl %s: must be positive (leave it out for a token that does not expire)", ttl)
				}
				req.Ttl = durationpb.New(ttl)
			}
			resp, err := call(c, cmd, func(ctx context.Context, admin tentaclev1.AdminServiceClient) (*tentaclev1.CreateAdminTokenResponse, error) {
				return admin.CreateAdminToken(ctx, req)
			})
			if err != nil {
				return err
			}
			if c.output == "json" {
				fmt.Fprintln(c.stderr, "tentaclectl: warning: the token is shown only this once: store it now")
				return c.printJSON(resp)
			}
			c.printAdminToken(resp)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&name, "name", "", "who or what the token is for, e.g. ci or alice (required)")
	fl.StringVar(&role, "role", "", "viewer, deployer or admin (required)")
	fl.DurationVar(&ttl, "ttl", 0, "how long the token is valid (default: no expiry)")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

func (c *cli) printAdminToken(resp *tentaclev1.CreateAdminTokenResponse) {
	w, info := c.stdout, resp.GetInfo()
	fmt.Fprintln(w, cell(resp.GetToken()))
	fmt.Fprintln(w)
	tw := newTable(w)
	row(tw, "Name:", cell(info.GetName()))
	row(tw, "ID:", cell(info.GetId()))
	row(tw, "Role:", cell(info.GetRole()))
	expires := "never"
	if e := info.GetExpiresAt(); e != nil {
		expires = fmt.Sprintf("%s (in %s)", c.formatTime(e), e.AsTime().Sub(c.now()).Round(time.Second))
	}
	row(tw, "Expires:", expires)
	tw.Flush()
	fmt.Fprintf(w, "\nThis is the only time the token is shown: store it now. To use it:\n  export TENTACLE_TOKEN=%s\n",
		shellQuote(resp.GetToken()))
}

func (c *cli) newAdminTokenListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List admin API tokens",
		Long: `List admin API tokens, revoked ones included; the tokens themselves are
never shown. STATE is active, expired or revoked.`,
		Example: "  tentaclectl admin-token list\n  tentaclectl admin-token ls -o json",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := call(c, cmd, func(ctx context.Context, admin tentaclev1.AdminServiceClient) (*tentaclev1.ListAdminTokensResponse, error) {
				return admin.ListAdminTokens(ctx, &tentaclev1.ListAdminTokensRequest{})
			})
			if err != nil {
				return err
			}
			return c.render(resp, func(w io.Writer) {
				row(w, "ID", "NAME", "ROLE", "CREATED", "CREATED BY", "EXPIRES", "STATE")
				for _, t := range resp.GetTokens() {
					expires := "never"
					if t.GetExpiresAt() != nil {
						expires = c.formatTime(t.GetExpiresAt())
					}
					row(w, cell(t.GetId()), cell(t.GetName()), cell(t.GetRole()), c.formatTime(t.GetCreatedAt()),
						cell(t.GetCreatedBy()), expires, c.adminTokenState(t))
				}
			})
		},
	}
}

func (c *cli) adminTokenState(t *tentaclev1.AdminTokenInfo) string {
	switch {
	case t.GetRevokedAt() != nil:
		return "revoked"
	case c.expired(t.GetExpiresAt()):
		return "expired"
	}
	return "active"
}

func (c *cli) newAdminTokenRevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID|NAME",
		Short: "Revoke an admin API token",
		Long: `Revoke an admin API token, by id or, when no id matches, by name: the server
refuses it from the next call on. Revoking the token tentaclectl itself uses
works, and is the last call it makes.

Give the id or name from admin-token list, not the token itself: that would
send the secret to the server and into its audit log.`,
		Example: `  tentaclectl admin-token revoke ci
  tentaclectl admin-token revoke 0190f6d2-3b4c-7d5e-8f60-718293a4b5c6`,
		Args: exactArgs("ID|NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			arg := strings.TrimSpace(args[0])
			switch {
			case arg == "":
				return badValue("empty ID|NAME: give the token's id or name (see tentaclectl admin-token list)")
			case strings.HasPrefix(arg, adminTokenPrefix):
				// Never echo it: it is a secret.
				return badValue("that is an admin token itself, not its id or name: find its id with tentaclectl admin-token list")
			}
			resp, err := call(c, cmd, func(ctx context.Context, admin tentaclev1.AdminServiceClient) (*tentaclev1.RevokeAdminTokenResponse, error) {
				return admin.RevokeAdminToken(ctx, &tentaclev1.RevokeAdminTokenRequest{Token: arg})
			})
			if err != nil {
				return err
			}
			return c.render(resp, func(w io.Writer) {
				t := resp.GetInfo()
				fmt.Fprintf(w, "revoked admin token %s (id %s, role %s) at %s: the server refuses it from now on\n",
					cell(t.GetName()), cell(t.GetId()), cell(t.GetRole()), c.formatTime(t.GetRevokedAt()))
			})
		},
	}
}
