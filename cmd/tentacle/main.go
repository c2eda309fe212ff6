// Command tentacle is the Tentacle agent: it runs on every target host,
// dials the server and deploys containers through the local Docker engine.
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
	defer stop()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "tentacle: %v\n", err)
		stop()
		os.Exit(1)
	}
}
