package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tentacle-deploy/tentacle/internal/bytesize"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

func (c *cli) newTargetsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "targets",
		Short: "List targets: the hosts running the agent",
		Long: `List targets: the hosts running the agent.

STATE is the target's health as the server judges it (docs/OPERATIONS.md):

  healthy      connected, and its agent reports nothing wrong
  degraded     works, but needs a look: a managed container restarting or
               unhealthy, drift (a container stopped, removed or replaced by
               hand), disk nearly full, clock skew, or no health report yet
  unhealthy    connected, but its agent cannot reach the Docker engine
  unavailable  no session: the agent is stopped, or the link is down
  revoked      revoked (see tentaclectl target revoke)

REASON is the first reason the state is not healthy ("+N more" when there
are more; the column is left out when no target has one); tentaclectl target
show NAME gives them all, with the details. A
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

// targetTable lists the targets; the REASON column, last because its
// sentences are long, is left out when no target has a reason.
func (c *cli) targetTable(w io.Writer, targets []*tentaclev1.Target) {
	reasons := slices.ContainsFunc(targets, func(t *tentaclev1.Target) bool { return firstReason(t) != "-" })
	header := []string{"NAME", "ENVIRONMENT", "ROLES", "STATE", "LAST SEEN", "AGENT", "DOCKER", "OS/ARCH", "CERT EXPIRES"}
	if reasons {
		header = append(header, "REASON")
	}
	row(w, header...)
	for _, t := range targets {
		platform := "-"
		if t.GetOs() != "" || t.GetArch() != "" {
			platform = cell(t.GetOs() + "/" + t.GetArch())
		}
		line := []string{cell(t.GetName()), cell(t.GetEnvironment()), cell(strings.Join(t.GetRoles(), ",")),
			targetState(t), c.formatAge(t.GetLastSeenAt()),
			cell(t.GetAgentVersion()), cell(t.GetDockerVersion()), platform, c.formatDate(t.GetCertExpiresAt())}
		if reasons {
			line = append(line, firstReason(t))
		}
		row(w, line...)
	}
}

// targetState is the health state in a word; a server older than health
// states says only whether the target is connected.
func targetState(t *tentaclev1.Target) string {
	switch {
	case t.GetRevokedAt() != nil:
		return "revoked"
	case t.GetHealthState() != tentaclev1.TargetHealthState_TARGET_HEALTH_STATE_UNSPECIFIED:
		return enumName(t.GetHealthState().String(), "TARGET_HEALTH_STATE_")
	case t.GetConnected():
		return "connected"
	}
	return "offline"
}

// firstReason is the first reason of a target's state, and how many more
// there are; a revoked target's reasons do not matter.
func firstReason(t *tentaclev1.Target) string {
	reasons := t.GetHealthReasons()
	if len(reasons) == 0 || t.GetRevokedAt() != nil {
		return "-"
	}
	if len(reasons) == 1 {
		return cell(reasons[0])
	}
	return fmt.Sprintf("%s (+%d more)", cell(reasons[0]), len(reasons)-1)
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
	return groupCmd("target", "Show or revoke a target (tentaclectl targets lists them)", c.newTargetShowCmd(), revoke)
}

func (c *cli) newTargetShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME|ID",
		Short: "Show a target's health: state and reasons, engine, containers, drift",
		Long: `Show one target, by name or id: its health state and every reason for it
(the thresholds are tentacle-server's --health-* flags, see
docs/OPERATIONS.md), when it was last seen, the agent's version and uptime,
its clock skew, the Docker engine's version and the disk where Docker keeps
its data, each managed container (application, state, health check, restarts,
image, release) and drift: a container stopped, removed or replaced by hand
since its last deployment, which tentaclectl deploy --missing puts right.

The details come from the agent's latest health report. For a target that is
offline it is the last one the agent sent, with its time.`,
		Example: `  tentaclectl target show web-1
  tentaclectl target show web-1 -o json`,
		Args: exactArgs("NAME|ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(args[0]) == "" {
				return badValue("empty target: give its name or id (see tentaclectl targets)")
			}
			resp, err := call(c, cmd, func(ctx context.Context, admin tentaclev1.AdminServiceClient) (*tentaclev1.GetTargetResponse, error) {
				return admin.GetTarget(ctx, &tentaclev1.GetTargetRequest{Target: args[0]})
			})
			if err != nil {
				return err
			}
			if c.output == "json" {
				return c.printJSON(resp)
			}
			return c.printTarget(resp.GetTarget())
		},
	}
}

// printTarget is the human view of one target.
func (c *cli) printTarget(t *tentaclev1.Target) error {
	w := c.stdout
	h := t.GetHealth()
	tw := newTable(w)
	row(tw, "Target:", fmt.Sprintf("%s (id %s)", cell(t.GetName()), cell(t.GetId())))
	row(tw, "Environment:", cell(t.GetEnvironment()))
	row(tw, "Roles:", cell(strings.Join(t.GetRoles(), ",")))
	row(tw, "State:", targetState(t))
	row(tw, "Last seen:", c.formatAge(t.GetLastSeenAt())+timeInParens(c, t.GetLastSeenAt()))
	agent := cell(t.GetAgentVersion())
	if started := h.GetAgentStartedAt(); started != nil {
		agent += fmt.Sprintf(", started %s", c.formatTime(started))
		if t.GetConnected() {
			agent += fmt.Sprintf(" (up %s)", formatUptime(c.now().Sub(started.AsTime())))
		}
	}
	row(tw, "Agent:", agent)
	skew := "-"
	if d := h.GetClockSkew(); d != nil {
		skew = formatSkew(d.AsDuration())
	}
	row(tw, "Clock skew:", skew)
	e := h.GetEngine()
	version := e.GetVersion()
	if version == "" {
		version = t.GetDockerVersion() // from Hello, when no report came
	}
	docker := cell(version)
	if e.GetApiVersion() != "" {
		docker += " (API " + cell(e.GetApiVersion()) + ")"
	}
	if e != nil && !e.GetReachable() {
		docker = "unreachable: " + cell(e.GetError())
	}
	row(tw, "Docker:", docker)
	disk := "-"
	if total := e.GetDiskTotalBytes(); total > 0 {
		disk = fmt.Sprintf("%s free of %s (%.0f%%) on %s", bytesize.SI(e.GetDiskFreeBytes()), bytesize.SI(total),
			float64(e.GetDiskFreeBytes())/float64(total)*100, cell(e.GetRootDir()))
	}
	row(tw, "Disk:", disk)
	row(tw, "Reported:", c.formatAge(h.GetReportedAt())+timeInParens(c, h.GetReportedAt()))
	if err := tw.Flush(); err != nil {
		return err
	}
	if reasons := t.GetHealthReasons(); len(reasons) > 0 && t.GetRevokedAt() == nil {
		fmt.Fprintln(w, "\nReasons:")
		for _, r := range reasons {
			fmt.Fprintf(w, "  - %s\n", cell(r))
		}
	}
	if cs := h.GetContainers(); len(cs) > 0 {
		fmt.Fprintln(w)
		tw = newTable(w)
		row(tw, "APP", "CONTAINER", "STATE", "HEALTH", "RESTARTS", "IMAGE", "RELEASE", "TASK")
		for _, ct := range cs {
			row(tw, cell(ct.GetApplication()), cell(ct.GetName()), cell(ct.GetState()), cell(ct.GetHealth()),
				fmt.Sprint(ct.GetRestartCount()), cell(ct.GetImage()), cell(ct.GetReleaseId()), cell(ct.GetTaskId()))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if drift := h.GetDrift(); len(drift) > 0 {
		fmt.Fprintln(w, "\nDrift:")
		for _, d := range drift {
			fmt.Fprintf(w, "  %s: %s since %s: %s\n", cell(d.GetApplication()), cell(d.GetKind()), c.formatTime(d.GetSince()), cell(d.GetDetail()))
		}
		d := drift[0]
		fmt.Fprintf(w, "hint: tentaclectl deploy --app %s --release %s --env %s --missing puts it right\n",
			cell(d.GetApplication()), shellQuote(d.GetExpectedReleaseVersion()), cell(t.GetEnvironment()))
	}
	return nil
}

func timeInParens(c *cli, ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return " (" + c.formatTime(ts) + ")"
}

// formatUptime is a duration at the precision a human needs.
func formatUptime(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours()/24), int(d.Hours())%24)
}

// formatSkew says which way the agent's clock is off.
func formatSkew(d time.Duration) string {
	switch {
	case d > 0:
		return d.Round(time.Millisecond).String() + " ahead of the server"
	case d < 0:
		return (-d).Round(time.Millisecond).String() + " behind the server"
	}
	return "none"
}
