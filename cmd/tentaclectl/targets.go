package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

func (c *cli) newTargetsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "targets",
		Short: "List targets: the hosts running the agent",
		Long: `List targets: the hosts running the agent.

STATE is connected, offline or revoked (see tentaclectl target revoke). A
target's latest security alert, such as its certificate presented from a
second host, is printed below the table with its time.`,
		Example: "  tentaclectl targets\n  tentaclectl targets -o json",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := call(c, cmd, func(ctx context.Context, admin tentaclev1.AdminServiceClient) (*tentaclev1.ListTargetsResponse, error) {
				return admin.ListTargets(ctx, &tentaclev1.ListTargetsRequest{})
			})
			if err != nil {
				return err
			}
			if err := c.render(resp, func(w io.Writer) { c.targetTable(w, resp.GetTargets()) }); err != nil {
				return err
			}
			if c.output == "json" {
				return nil
			}
			c.printAlerts(resp.GetTargets())
			return nil
		},
	}
}

func (c *cli) targetTable(w io.Writer, targets []*tentaclev1.Target) {
	row(w, "NAME", "ENVIRONMENT", "ROLES", "STATE", "LAST SEEN", "AGENT", "DOCKER", "OS/ARCH", "CERT EXPIRES")
	for _, t := range targets {
		platform := "-"
		if t.GetOs() != "" || t.GetArch() != "" {
			platform = cell(t.GetOs() + "/" + t.GetArch())
		}
		row(w, cell(t.GetName()), cell(t.GetEnvironment()), cell(strings.Join(t.GetRoles(), ",")),
			targetState(t), c.formatAge(t.GetLastSeenAt()),
			cell(t.GetAgentVersion()), cell(t.GetDockerVersion()), platform, c.formatDate(t.GetCertExpiresAt()))
	}
}

func targetState(t *tentaclev1.Target) string {
	switch {
	case t.GetRevokedAt() != nil:
		return "revoked"
	case t.GetConnected():
		return "connected"
	}
	return "offline"
}

// printAlerts lists the targets' alerts after the table: they are sentences,
// too long for a column.
func (c *cli) printAlerts(targets []*tentaclev1.Target) {
	var alerted []*tentaclev1.Target
	unrevoked := false
	for _, t := range targets {
		if t.GetAlert() != "" {
			alerted = append(alerted, t)
			unrevoked = unrevoked || t.GetRevokedAt() == nil
		}
	}
	if len(alerted) == 0 {
		return
	}
	w := c.stdout
	fmt.Fprintln(w)
	for _, t := range alerted {
		fmt.Fprintf(w, "alert on %s at %s: %s\n", cell(t.GetName()), c.formatTime(t.GetAlertAt()), cell(t.GetAlert()))
	}
	if unrevoked {
		fmt.Fprintln(w, "hint: if a target's certificate may have been copied, revoke it: tentaclectl target revoke NAME")
	}
}

// newTargetCmd holds commands on one target; "targets" lists them.
func (c *cli) newTargetCmd() *cobra.Command {
	revoke := &cobra.Command{
		Use:   "revoke NAME|ID",
		Short: "Revoke a target: close its session and refuse its certificate",
		Long: `Revoke a target, by name or id. The server closes the target's live session
at once and refuses its certificate from now on; new deployments give it no
tasks. Revocation cannot be undone: to bring the host back, create a new join
token and run tentacle enroll --force with it on the host, which makes it a
new target.

Revoking a target that is already revoked changes nothing and prints when it
was revoked.`,
		Example: `  tentaclectl target revoke web-1
  tentaclectl target revoke 0190f6d2-5a1b-7c3d-8e4f-a0b1c2d3e4f5 -o json`,
		Args: exactArgs("NAME|ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(args[0]) == "" {
				return badValue("empty target: give its name or id (see tentaclectl targets)")
			}
			resp, err := call(c, cmd, func(ctx context.Context, admin tentaclev1.AdminServiceClient) (*tentaclev1.RevokeTargetResponse, error) {
				return admin.RevokeTarget(ctx, &tentaclev1.RevokeTargetRequest{Target: args[0]})
			})
			if err != nil {
				return err
			}
			return c.render(resp, func(w io.Writer) {
				t := resp.GetTarget()
				env := "ENV"
				if t.GetEnvironment() != "" {
					env = shellQuote(t.GetEnvironment())
				}
				fmt.Fprintf(w, "revoked target %s (id %s, environment %s) at %s\n",
					cell(t.GetName()), cell(t.GetId()), cell(t.GetEnvironment()), c.formatTime(t.GetRevokedAt()))
				fmt.Fprintf(w, "Its session is closed and its certificate is refused from now on. To bring the\n"+
					"host back, create a new join token (tentaclectl token create --env %s) and\n"+
					"run tentacle enroll --force with it on the host.\n", cell(env))
			})
		},
	}
	return groupCmd("target", "Revoke a target (tentaclectl targets lists them)", revoke)
}
