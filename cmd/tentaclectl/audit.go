package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

func (c *cli) newAuditCmd() *cobra.Command {
	var since string
	var limit int32
	cmd := &cobra.Command{
		Use:   "audit [--since 24h | --since 2026-11-26T10:00:00Z] [--limit N]",
		Short: "Show the audit log: who did what, from where, and how it ended",
		Long: `Show the server's append-only audit log, oldest first: each admin call that
changes something or is refused, each enrollment and security event.

ACTOR is who acted (admin-token:NAME, target:NAME, agent-enrollment, server),
OBJECT what it acted on, PEER the address it came from, and OUTCOME ok or
denied/failed with the reason.

--since takes a duration, meaning that long ago (30m, 24h, 168h for a week),
or an RFC 3339 time with its zone (2026-11-26T10:00:00Z, or +01:00 for an
offset). --limit keeps the newest N records of those.`,
		Example: `  tentaclectl audit
  tentaclectl audit --since 24h
  tentaclectl audit --since 2026-11-26T10:00:00Z --limit 1000 -o json`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return badValue("--limit %d: must be at least 1", limit)
			}
			req := &tentaclev1.ListAuditRecordsRequest{Limit: limit}
			if since != "" {
				t, err := parseSince(since, c.now())
				if err != nil {
					return err
				}
				req.Since = timestamppb.New(t)
			}
			resp, err := call(c, cmd, func(ctx context.Context, admin tentaclev1.AdminServiceClient) (*tentaclev1.ListAuditRecordsResponse, error) {
				return admin.ListAuditRecords(ctx, req)
			})
			if err != nil {
				return err
			}
			err = c.render(resp, func(w io.Writer) {
				row(w, "TIME", "ACTOR", "ACTION", "OBJECT", "PEER", "OUTCOME")
				for _, r := range resp.GetRecords() {
					row(w, c.formatTime(r.GetAt()), cell(r.GetActor()), cell(r.GetAction()), cell(r.GetObject()),
						cell(r.GetPeer()), cell(r.GetOutcome()))
				}
			})
			if err == nil && c.output == "table" && len(resp.GetRecords()) >= int(limit) {
				// Oldest first: what --limit cut off is above the first row.
				fmt.Fprintf(c.stderr, "tentaclectl: showing the newest %d records; there may be older ones (raise --limit)\n", limit)
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&since, "since", "", "only records since then: a duration ago (24h) or an RFC 3339 time (2026-11-26T10:00:00Z)")
	fl.Int32Var(&limit, "limit", 100, "at most this many records, the newest")
	return cmd
}

// parseSince reads --since: a duration back from now, or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if _, err := time.Parse("2006-01-02T15:04:05", s); err == nil {
		return time.Time{}, badValue("--since %q: an RFC 3339 time needs its zone, e.g. %sZ for UTC or %s+01:00 (or use a duration such as 24h)", s, s, s)
	}
	return time.Time{}, badValue("--since %q: use a duration such as 30m or 24h (that long ago) or an RFC 3339 time such as 2026-11-26T10:00:00Z", s)
}
