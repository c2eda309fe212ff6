package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/tentacle-deploy/tentacle/internal/logging"
	"github.com/tentacle-deploy/tentacle/internal/version"
	"github.com/tentacle-deploy/tentacle/server"
	"github.com/tentacle-deploy/tentacle/server/store/sqlite"
)

type globals struct {
	log logging.Options
}

func newRootCommand() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "tentacle-server",
		Short:         "Tentacle control server: environments, releases, deployments, agents' sessions and logs",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.log.Format, "log-format", "console", "log format: console or json")
	root.PersistentFlags().StringVar(&g.log.Level, "log-level", "info", "log level: debug, info, warn or error")
	root.AddCommand(serveCommand(g), devCommand(g), migrateCommand(g), caCommand(), &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), version.Version) },
	})
	return root
}

func (g *globals) logger() (*zap.Logger, error) { return logging.New(g.log, nil) }

type serveFlags struct {
	dataDir   string
	listen    string
	hostnames []string
	heartbeat time.Duration
	certTTL   time.Duration
}

func (f *serveFlags) register(cmd *cobra.Command, listenDefault string) {
	cmd.Flags().StringVar(&f.dataDir, "data-dir", f.dataDir, "directory for the store, the CA and the server certificate")
	cmd.Flags().StringVar(&f.listen, "listen", listenDefault, "gRPC address for agents and admins")
	cmd.Flags().StringSliceVar(&f.hostnames, "hostname", nil, "extra DNS name or IP agents use to reach the server, for its certificate (repeatable)")
	cmd.Flags().DurationVar(&f.heartbeat, "heartbeat", 10*time.Second, "how often agents send heartbeats; a silent agent is dropped after 3 intervals")
	cmd.Flags().DurationVar(&f.certTTL, "client-cert-validity", 30*24*time.Hour, "lifetime of agents' client certificates")
}

func (f *serveFlags) config() server.Config {
	return server.Config{DataDir: f.dataDir, Listen: f.listen, Hostnames: f.hostnames, HeartbeatInterval: f.heartbeat, ClientCertValidity: f.certTTL}
}

func serveCommand(g *globals) *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "serve --data-dir DIR",
		Short: "Run the control server",
		Long: `Run the control server.

On first start it creates its CA and server certificate in DIR/pki (keys 0600),
the SQLite store DIR/tentacle.db, and a bootstrap admin token that it prints
once: keep it, it cannot be shown again.`,
		Example: "  tentacle-server serve --data-dir /var/lib/tentacle-server --hostname tentacle.example.com",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			defer log.Sync()
			cfg := f.config()
			cfg.Out = cmd.OutOrStdout()
			s, err := server.New(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			return s.Serve(cmd.Context())
		},
	}
	f.register(cmd, ":8443")
	return cmd
}

func migrateCommand(g *globals) *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "migrate --data-dir DIR",
		Short: "Apply the store's schema migrations and exit (serve does this too)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dataDir == "" {
				return fmt.Errorf("--data-dir is required")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			st, err := sqlite.Open(ctx, dataDir+"/tentacle.db")
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "store is up to date")
			return st.Close()
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "the server's data directory")
	return cmd
}
