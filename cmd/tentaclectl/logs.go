package main

import (
	"context"
	"errors"
	"io"

	"github.com/spf13/cobra"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

func (c *cli) newLogsCmd() *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs TASK [-f]",
		Short: "Print a task's log",
		Long: `Print a task's log as the agent recorded it: the pull, the container's start
and its output while the task ran. The bytes are written unchanged, whatever
--output says. With -f, keep printing until the task has finished and its log
is complete. If the connection breaks (a server restart), the log resumes at
the last byte printed once the server is back within --timeout.`,
		Example: `  tentaclectl logs 0190f6d2-8e11-7c2a-b1f0-5a6b7c8d9e0f
  tentaclectl logs -f 0190f6d2-8e11-7c2a-b1f0-5a6b7c8d9e0f`,
		Args: exactArgs("TASK"),
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := c.connect(cmd)
			if err != nil {
				return err
			}
			defer conn.Close()
			// No call deadline: a followed log lasts as long as the task.
			return c.streamLog(cmd.Context(), conn, args[0], follow)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow the log until the task has finished")
	return cmd
}

// streamLog copies the log to stdout, resuming from the last byte received
// if the stream breaks.
func (c *cli) streamLog(ctx context.Context, conn *connection, taskID string, follow bool) error {
	var offset uint64
	r := &reconnector{conn: conn, stderr: c.stderr}
	for {
		err := func() error {
			stream, err := conn.admin.ReadTaskLog(ctx, &tentaclev1.ReadTaskLogRequest{TaskId: taskID, Offset: offset, Follow: follow})
			if err != nil {
				return err
			}
			for {
				msg, err := stream.Recv()
				if err != nil {
					return err
				}
				r.progressed()
				if _, err := c.stdout.Write(msg.GetData()); err != nil {
					return err
				}
				// The server's offset is where this chunk starts.
				offset = msg.GetOffset() + uint64(len(msg.GetData()))
			}
		}()
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case !r.retry(ctx, err):
			return conn.explain(err)
		}
	}
}
