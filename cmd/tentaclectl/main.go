// Command tentaclectl is the admin CLI of Tentacle: it manages environments,
// applications, releases, deployments, targets, join and admin tokens, and
// reads the audit log, through the server's admin gRPC API.
package main

import (
	"context"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	// After the first Ctrl-C has cancelled ctx, a second one kills the process
	// the default way, in case something does not notice the cancellation.
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := newCLI(os.Stdout, os.Stderr).run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
