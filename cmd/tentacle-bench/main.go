// Command tentacle-bench measures Tentacle against the figures in
// docs/PERFORMANCE.md: how fast work reaches a fleet of simulated agents
// and how many the server carries (real server process, real mTLS
// sessions, the agent's own session code with a simulated engine), and what
// a real agent costs its host and adds to the Docker engine's own time.
// It prints a table (or JSON with -o json); it never fails on a missed
// target, it reports it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tentacle-bench:", err)
		os.Exit(1)
	}
}
