package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tentacle-deploy/tentacle/internal/pki"
	"github.com/tentacle-deploy/tentacle/internal/spec"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

func (c *cli) newTokenCmd() *cobra.Command {
	return groupCmd("token", "Create, list and revoke join tokens that enroll targets",
		c.newTokenCreateCmd(), c.newTokenListCmd(), c.newTokenRevokeCmd())
}

func (c *cli) newTokenCreateCmd() *cobra.Command {
	var env string
	var roles []string
	var ttl time.Duration
	var uses int32
	cmd := &cobra.Command{
		Use:   "create --env ENV [--roles a,b] [--ttl 1h] [--uses 1]",
		Short: "Create a join token for enrolling targets into an environment",
		Long: `Create a join token. A host running the agent uses it once to enroll into ENV
with the given roles; the token also pins the server's CA, so the host needs
nothing else to trust the server.

The token is printed on the first line. In table mode the CA hash, the expiry
and the command to run on the target follow.`,
		Example: `  tentaclectl token create --env prod --roles web,edge
  tentaclectl token create --env test --ttl 24h --uses 10 -o json`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := spec.ValidateName("--env", env); err != nil {
				return badValue("%v", err)
			}
			for _, r := range roles {
				if strings.TrimSpace(r) == "" {
					return badValue("--roles: empty role name")
				}
			}
			if ttl <= 0 {
				return badValue("--ttl %s: must be positive", ttl)
			}
			if uses < 1 {
				return badValue("--uses %d: must be at least 1", uses)
			}
			conn, err := c.connect(cmd)
			if err != nil {
				return err
			}
			defer conn.Close()
			ctx, cancel := conn.callContext(cmd.Context())
			defer cancel()
			resp, err := conn.admin.CreateJoinToken(ctx, &tentaclev1.CreateJoinTokenRequest{
				Environment: env, Roles: roles, Ttl: durationpb.New(ttl), Uses: uses,
			})
			if err != nil {
				return conn.explain(err)
			}
			if c.output == "json" {
				return c.printJSON(resp)
			}
			c.printJoinToken(resp, conn.settings.server, env)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&env, "env", "", "environment the target joins (required)")
	fl.StringSliceVar(&roles, "roles", nil, "roles of the target, comma-separated")
	fl.DurationVar(&ttl, "ttl", time.Hour, "how long the token is valid")
	fl.Int32Var(&uses, "uses", 1, "how many targets may enroll with it")
	_ = cmd.MarkFlagRequired("env")
	return cmd
}

func (c *cli) newTokenListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List join tokens",
		Long: `List join tokens, without their secrets. USES is enrollments made/allowed.
STATE is active, expired, used up or revoked; only an active token enrolls.`,
		Example: "  tentaclectl token list\n  tentaclectl token ls -o json",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := call(c, cmd, func(ctx context.Context, admin tentaclev1.AdminServiceClient) (*tentaclev1.ListJoinTokensResponse, error) {
				return admin.ListJoinTokens(ctx, &tentaclev1.ListJoinTokensRequest{})
			})
			if err != nil {
				return err
			}
			return c.render(resp, func(w io.Writer) {
				row(w, "ID", "ENVIRONMENT", "ROLES", "USES", "EXPIRES", "CREATED BY", "STATE")
				for _, t := range resp.GetTokens() {
					row(w, cell(t.GetId()), cell(t.GetEnvironment()), cell(strings.Join(t.GetRoles(), ",")),
						fmt.Sprintf("%d/%d", t.GetUsesCount(), t.GetUsesAllowed()), c.formatTime(t.GetExpiresAt()),
						cell(t.GetCreatedBy()), c.joinTokenState(t))
				}
			})
		},
	}
}

// joinTokenState says whether the token still enrolls and, if not, why.
func (c *cli) joinTokenState(t *tentaclev1.JoinTokenInfo) string {
	switch {
	case t.GetRevokedAt() != nil:
		return "revoked"
	case t.GetUsesCount() >= t.GetUsesAllowed():
		return "used up"
	case c.expired(t.GetExpiresAt()):
		return "expired"
	}
	return "active"
}

func (c *cli) newTokenRevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a join token so that it enrolls no more targets",
		Long: `Revoke a join token: it enrolls no more targets. Targets that already enrolled
with it stay; revoke those with tentaclectl target revoke.

ID is the token's id from token list. The whole token (TNT1.…) works too: only
the id in it is sent, never its secret.`,
		Example: `  tentaclectl token revoke k3x7qa
  tentaclectl token revoke "$(cat leaked-token.txt)"`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := strings.TrimSpace(args[0])
			if id == "" {
				return badValue("empty ID: give the token's id (see tentaclectl token list)")
			}
			// Ids have no dots; a pasted token does. Its errors never
			// contain the secret.
			if strings.Contains(id, ".") {
				tok, err := pki.ParseJoinToken(id)
				if err != nil {
					return badValue("%v", err)
				}
				id = tok.ID
			}
			resp, err := call(c, cmd, func(ctx context.Context, admin tentaclev1.AdminServiceClient) (*tentaclev1.RevokeJoinTokenResponse, error) {
				return admin.RevokeJoinToken(ctx, &tentaclev1.RevokeJoinTokenRequest{Id: id})
			})
			if err != nil {
				return err
			}
			return c.render(resp, func(w io.Writer) {
				t := resp.GetToken()
				fmt.Fprintf(w, "revoked join token %s (environment %s, %d/%d uses) at %s: it enrolls no more targets\n",
					cell(t.GetId()), cell(t.GetEnvironment()), t.GetUsesCount(), t.GetUsesAllowed(), c.formatTime(t.GetRevokedAt()))
				if t.GetUsesCount() > 0 {
					fmt.Fprintln(w, "Targets it enrolled stay enrolled; revoke one with tentaclectl target revoke NAME.")
				}
			})
		},
	}
}

func (c *cli) printJoinToken(resp *tentaclev1.CreateJoinTokenResponse, server, env string) {
	w := c.stdout
	fmt.Fprintln(w, cell(resp.GetToken()))
	fmt.Fprintln(w)
	tw := newTable(w)
	row(tw, "CA hash:", cell(resp.GetCaHash()))
	expires := c.formatTime(resp.GetExpiresAt())
	if resp.GetExpiresAt() != nil {
		expires += fmt.Sprintf(" (in %s)", resp.GetExpiresAt().AsTime().Sub(c.now()).Round(time.Second))
	}
	row(tw, "Expires:", expires)
	tw.Flush()
	fmt.Fprintf(w, "\nTo enroll a host into %s, run on it:\n  tentacle enroll --server %s --token %s\n",
		env, shellQuote(server), shellQuote(resp.GetToken()))
	if host, _, err := net.SplitHostPort(server); err == nil && isLoopback(host) {
		fmt.Fprintf(w, "(%s only reaches this machine: on another host use an address of the server it can reach)\n", host)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// shellQuote makes s one word for a POSIX shell. The token comes from the
// server and the command is meant to be pasted into a root shell: nothing in
// it may be interpreted.
func shellQuote(s string) string {
	safe := s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:/=+@,", r))
	}) < 0
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
