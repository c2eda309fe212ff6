package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/tentacle-deploy/tentacle/agent"
	"github.com/tentacle-deploy/tentacle/agent/creds"
	"github.com/tentacle-deploy/tentacle/agent/docker"
	"github.com/tentacle-deploy/tentacle/server"
	"github.com/tentacle-deploy/tentacle/server/store"
)

// devCommand runs a server and a local agent in one process: the quickest
// way to try a deployment. The agent is a real agent: it enrolls over gRPC
// with a join token and pulls with the local Docker's credentials.
func devCommand(g *globals) *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a server with an embedded store and a local agent, for trying Tentacle out",
		Long: `Run a server with an embedded store and a local agent in one process.

The agent is enrolled into the environment "dev" against the local Docker
engine (DOCKER_HOST or the default socket) and pulls with the credentials of
~/.docker/config.json. Without --data-dir a new temporary directory is used.
It prints the tentaclectl commands to deploy an image.`,
		Example: "  tentacle-server dev\n  tentacle-server dev --data-dir ./dev-data --listen 127.0.0.1:9443",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			defer log.Sync()
			return runDev(cmd.Context(), f, cmd.OutOrStdout(), log)
		},
	}
	f.register(cmd, "127.0.0.1:8443")
	return cmd
}

func runDev(ctx context.Context, f *serveFlags, out io.Writer, log *zap.Logger) error {
	if f.dataDir == "" {
		dir, err := os.MkdirTemp("", "tentacle-dev-")
		if err != nil {
			return err
		}
		f.dataDir = dir
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	cfg.Out = io.Discard // dev prints its own token below
	srv, err := server.New(ctx, cfg, log.Named("server"))
	if err != nil {
		return err
	}
	adminToken := srv.BootstrapToken
	if adminToken == "" {
		if adminToken, err = srv.CreateAdminToken(ctx, "dev", server.RoleAdmin, 24*time.Hour); err != nil {
			return err
		}
	}
	err = srv.Store().CreateEnvironment(ctx, store.Environment{Name: "dev", Description: "local dev agent", CreatedAt: time.Now().UTC()})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var serveErr error
	wg.Add(1)
	go func() { defer wg.Done(); serveErr = srv.Serve(ctx); cancel() }()
	defer wg.Wait()

	addr := dialAddr(srv.Addr())
	agentDir := filepath.Join(f.dataDir, "agent")
	if _, err := agent.LoadIdentity(agentDir); err != nil {
		tok, _, err := srv.CreateJoinToken(ctx, "dev", []string{"dev"}, 10*time.Minute, 1, "dev")
		if err != nil {
			return err
		}
		if _, err := agent.Enroll(ctx, agent.EnrollOptions{Server: addr, Token: tok.String(), DataDir: agentDir}); err != nil {
			return fmt.Errorf("enroll local agent: %w", err)
		}
	}
	home, _ := os.UserHomeDir()
	cs, err := creds.New(nil, filepath.Join(home, ".docker", "config.json"))
	if err != nil {
		return err
	}
	cli, err := docker.NewClient()
	if err != nil {
		return err
	}
	defer cli.Close()
	ag, err := agent.New(agent.Config{DataDir: agentDir}, docker.New(cli, cs, log.Named("docker")), log.Named("agent"))
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = ag.Run(ctx) }()

	caPath := filepath.Join(f.dataDir, "pki", "ca.crt")
	fmt.Fprintf(out, `
Tentacle dev server is running (Ctrl-C stops it).
  data dir: %s
  server:   %s
  agent:    enrolled in environment "dev", using the local Docker engine
  metrics:  %s

In another terminal:

  export TENTACLE_SERVER=%s TENTACLE_CA_FILE=%s
  export TENTACLE_TOKEN=%s
  tentaclectl app create hello --image docker.io/library/nginx --port 8080:80 --env GREETING=hello
  tentaclectl release create --app hello --tag 1.27
  tentaclectl deploy --app hello --release 1.27 --env dev --wait
  tentaclectl deployments
  tentaclectl logs TASK_ID
  tentaclectl logs hello --env dev -f
  tentaclectl targets

(Use "go run ./cmd/tentaclectl" in place of tentaclectl from a source checkout.)

`, f.dataDir, addr, metricsURL(srv), addr, caPath, adminToken)
	<-ctx.Done()
	wg.Wait()
	return serveErr
}

// metricsURL is where the dev server's Prometheus metrics are, or why
// there are none.
func metricsURL(srv *server.Server) string {
	if a := srv.ProbeAddr(); a != "" {
		return "http://" + a + "/metrics (also /healthz, /readyz)"
	}
	return "off (--http-listen \"\")"
}

// dialAddr turns a listen address into one a local client can dial.
func dialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
