package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

func (c *cli) newLogsCmd() *cobra.Command {
	var (
		follow          bool
		env, target     string
		since, tailFlag string
	)
	cmd := &cobra.Command{
		Use:   "logs TASK [-f] | logs APP --env ENV [--target NAME] [-f] [--since 10m] [--tail N]",
		Short: "Print a task's log, or the live log of an application's containers",
		Long: `Two logs, told apart by --env.

logs TASK prints a task's log as the agent recorded it: the pull, the
container's start and its output while the task ran. The bytes are written
unchanged, whatever --output says. With -f, keep printing until the task has
finished and its log is complete. If the connection breaks (a server restart),
the log resumes at the last byte printed once the server is back within
--timeout.

logs APP --env ENV prints the log of the application's running container on
every target of the environment that has the application's roles (or only
--target), read live through the agents' sessions. Each line is prefixed with
its target ("web-2 | ..."); with -o json each line is one JSON object
{"target": ..., "line": ...}. Secrets are masked as in task logs. With -f it
keeps streaming until the containers stop or you press Ctrl-C (exit 0).
Why each target's log ended (container stopped, end of log, no container) and
targets that cannot be tailed (no session, no answer) are reported on stderr;
the exit code is 1 only if every target failed that way. A slow terminal slows the tail down: nothing is lost
and nothing piles up on the server.`,
		Example: `  tentaclectl logs 0190f6d2-8e11-7c2a-b1f0-5a6b7c8d9e0f
  tentaclectl logs -f 0190f6d2-8e11-7c2a-b1f0-5a6b7c8d9e0f
  tentaclectl logs web --env prod -f
  tentaclectl logs web --env prod --target web-2 --since 10m --tail 100`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{err: errors.New("missing TASK (or APP with --env)"), showUsage: true}
			}
			return exactArgs("TASK")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if env == "" {
				for _, name := range []string{"target", "since", "tail"} {
					if cmd.Flags().Changed(name) {
						return badValue("--%s needs --env: it applies to the live log of an application (logs APP --env ENV)", name)
					}
				}
			}
			var req *tentaclev1.TailLogsRequest
			if env != "" {
				var err error
				if req, err = tailRequest(args[0], env, target, since, tailFlag, follow); err != nil {
					return err
				}
			}
			conn, err := c.connect(cmd)
			if err != nil {
				return err
			}
			defer conn.Close()
			// No call deadline: a followed log lasts as long as the task
			// or the container.
			if req != nil {
				return c.tailLogs(cmd.Context(), conn, req)
			}
			return c.streamLog(cmd.Context(), conn, args[0], follow)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "follow the log: until the task has finished, or (with --env) until the containers stop")
	f.StringVar(&env, "env", "", "print the live log of application APP in environment `ENV` instead of a task's log")
	f.StringVar(&target, "target", "", "with --env: only the target named `NAME`")
	f.StringVar(&since, "since", "", "with --env: only lines from the last `DURATION`, e.g. 10m or 2h")
	f.StringVar(&tailFlag, "tail", "", "with --env: only the last `N` lines of each target (0: all)")
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

// tailRequest checks the live-tail flags and builds the request.
func tailRequest(app, env, target, since, tail string, follow bool) (*tentaclev1.TailLogsRequest, error) {
	req := &tentaclev1.TailLogsRequest{Application: app, Environment: env, Target: target, Follow: follow}
	if since != "" {
		d, err := parseTailSince(since)
		if err != nil {
			return nil, err
		}
		req.Since = durationpb.New(d)
	}
	if tail != "" {
		n, err := parseTailLines(tail)
		if err != nil {
			return nil, err
		}
		req.TailLines = n
	}
	return req, nil
}

// parseTailSince reads --since: how far back the live log starts.
func parseTailSince(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, badValue("--since %q: use a positive duration such as 30s, 10m or 2h (that long ago)", s)
	}
	return d, nil
}

// parseTailLines reads --tail: how many last lines of each target.
func parseTailLines(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, badValue("--tail %q: use a number of lines, 0 or more (0: every line)", s)
	}
	return n, nil
}

// tailLogs prints the live log of every target until each target's tail
// has ended or the user presses Ctrl-C; Ctrl-C is a normal end, not an
// error.
func (c *cli) tailLogs(ctx context.Context, conn *connection, req *tentaclev1.TailLogsRequest) error {
	p := &tailPrinter{c: c, width: len(req.GetTarget())}
	if req.GetTarget() == "" {
		p.width = c.widestTarget(ctx, conn, req.GetEnvironment())
	}
	stream, err := conn.admin.TailLogs(ctx, req)
	if err != nil {
		return conn.explain(err)
	}
	for {
		msg, err := stream.Recv()
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, io.EOF):
			if p.tailed == 0 && p.failed > 0 {
				return exitCode(1)
			}
			return nil
		case err != nil:
			return conn.explain(err)
		}
		if err := p.print(msg); err != nil {
			return err
		}
	}
}

// widestTarget is the length of the longest target name in env, so that
// the lines of every target line up from the first; 0 if unknown (the
// width then grows with the names seen).
func (c *cli) widestTarget(ctx context.Context, conn *connection, env string) int {
	cctx, cancel := conn.callContext(ctx)
	defer cancel()
	resp, err := conn.admin.ListTargets(cctx, &tentaclev1.ListTargetsRequest{})
	if err != nil {
		return 0
	}
	w := 0
	for _, t := range resp.GetTargets() {
		if t.GetEnvironment() == env {
			w = max(w, len(t.GetName()))
		}
	}
	return w
}

// tailPrinter writes the lines of a live tail, each prefixed with its
// target, and says on stderr how each target's tail ended.
type tailPrinter struct {
	c      *cli
	width  int
	tailed int // targets whose tail ended normally
	failed int // targets that could not be tailed
}

func (p *tailPrinter) print(msg *tentaclev1.TailLogsResponse) error {
	target := msg.GetTarget()
	p.width = max(p.width, len(target))
	if data := msg.GetData(); len(data) > 0 {
		var out bytes.Buffer
		for _, line := range strings.SplitAfter(string(data), "\n") {
			if line == "" {
				continue
			}
			line = strings.TrimSuffix(line, "\n")
			if p.c.output == "json" {
				b, err := json.Marshal(struct {
					Target string `json:"target"`
					Line   string `json:"line"`
				}{target, line})
				if err != nil {
					return err
				}
				out.Write(append(b, '\n'))
			} else {
				fmt.Fprintf(&out, "%-*s | %s\n", p.width, target, line)
			}
		}
		if _, err := p.c.stdout.Write(out.Bytes()); err != nil {
			return err
		}
	}
	switch {
	case msg.GetError() != "":
		p.failed++
		fmt.Fprintf(p.c.stderr, "%s: %s\n", target, msg.GetError())
	case msg.GetEnded() != "":
		p.tailed++
		fmt.Fprintf(p.c.stderr, "%s: %s\n", target, msg.GetEnded())
	}
	return nil
}
