package main

import (
	"context"
	"io"
	"strings"

	"github.com/spf13/cobra"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

func (c *cli) newTargetsCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "targets",
		Short:   "List targets: the hosts running the agent",
		Example: "  tentaclectl targets\n  tentaclectl targets -o json",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := call(c, cmd, func(ctx context.Context, admin tentaclev1.AdminServiceClient) (*tentaclev1.ListTargetsResponse, error) {
				return admin.ListTargets(ctx, &tentaclev1.ListTargetsRequest{})
			})
			if err != nil {
				return err
			}
			return c.render(resp, func(w io.Writer) {
				row(w, "NAME", "ENVIRONMENT", "ROLES", "CONNECTED", "LAST SEEN", "AGENT", "DOCKER", "OS/ARCH")
				for _, t := range resp.GetTargets() {
					platform := "-"
					if t.GetOs() != "" || t.GetArch() != "" {
						platform = cell(t.GetOs() + "/" + t.GetArch())
					}
					row(w, cell(t.GetName()), cell(t.GetEnvironment()), cell(strings.Join(t.GetRoles(), ",")),
						yesNo(t.GetConnected()), c.formatAge(t.GetLastSeenAt()),
						cell(t.GetAgentVersion()), cell(t.GetDockerVersion()), platform)
				}
			})
		},
	}
}
