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
	dataDir       string
	listen        string
	hostnames     []string
	heartbeat     time.Duration
	agentTimeout  time.Duration
	maxHandshakes int
	deadline      time.Duration
	certTTL       time.Duration
	httpListen    string
	debugPprof    bool
	health        server.HealthThresholds
}

func (f *serveFlags) register(cmd *cobra.Command, listenDefault string) {
	cmd.Flags().StringVar(&f.dataDir, "data-dir", f.dataDir, "directory for the store, the CA and the server certificate")
	cmd.Flags().StringVar(&f.listen, "listen", listenDefault, "gRPC address for agents and admins")
	cmd.Flags().StringSliceVar(&f.hostnames, "hostname", nil, "extra DNS name or IP agents use to reach the server, for its certificate (repeatable)")
	cmd.Flags().DurationVar(&f.heartbeat, "heartbeat", 10*time.Second, "how often agents send heartbeats (at most a third of --agent-timeout)")
	cmd.Flags().DurationVar(&f.agentTimeout, "agent-timeout", 45*time.Second,
		"how long an agent may stay silent before its session is closed and its target shows as not connected (at least 3 × --heartbeat)")
	cmd.Flags().IntVar(&f.maxHandshakes, "max-handshakes", 64,
		"agents let into their session handshake at once; more are asked to retry in a few seconds (a reconnect storm after a restart)")
	cmd.Flags().DurationVar(&f.deadline, "deployment-deadline", time.Hour,
		"how long a deployment's tasks wait for their targets unless tentaclectl deploy --deadline says otherwise; then they fail (1m to 168h)")
	cmd.Flags().DurationVar(&f.certTTL, "client-cert-validity", 30*24*time.Hour, "lifetime of agents' client certificates")
	cmd.Flags().StringVar(&f.httpListen, "http-listen", "127.0.0.1:8480", "plain-HTTP address for /metrics, /healthz and /readyz (\"\" turns it off)")
	cmd.Flags().BoolVar(&f.debugPprof, "debug-pprof", false, "serve Go's profiler (net/http/pprof) under /debug/pprof/ on --http-listen")
	cmd.Flags().MarkHidden("debug-pprof")
	cmd.Flags().Float64Var(&f.health.DiskFreePercent, "health-disk-free", 10, "a target is degraded when the filesystem of its Docker data root has less free space than this percentage")
	cmd.Flags().DurationVar(&f.health.ClockSkew, "health-clock-skew", 30*time.Second, "a target is degraded when its clock is off from the server's by more than this")
	cmd.Flags().IntVar(&f.health.Restarts, "health-restarts", 3, "a target is degraded when a managed container has restarted more than this many times since it was deployed")
}

// config builds the server's configuration; server.New checks the values
// against each other. Zero means "the default" to server.New, so the flags
// refuse it here, where a zero can only have been typed.
func (f *serveFlags) config() (server.Config, error) {
	if f.heartbeat == 0 {
		return server.Config{}, fmt.Errorf("--heartbeat: 0 would never heartbeat: use a positive interval such as 10s")
	}
	if f.agentTimeout == 0 {
		return server.Config{}, fmt.Errorf("--agent-timeout: 0 would drop every agent: use at least 3 × --heartbeat, such as 45s")
	}
	if f.maxHandshakes == 0 {
		return server.Config{}, fmt.Errorf("--max-handshakes: 0 would refuse every agent: use at least 1, such as 64")
	}
	if f.deadline == 0 {
		return server.Config{}, fmt.Errorf("--deployment-deadline: 0 would fail every task at once: use 1m to 168h, such as 1h")
	}
	return server.Config{DataDir: f.dataDir, Listen: f.listen, Hostnames: f.hostnames, HeartbeatInterval: f.heartbeat,
		AgentTimeout: f.agentTimeout, MaxHandshakes: f.maxHandshakes, DeploymentDeadline: f.deadline, ClientCertValidity: f.certTTL,
		HTTPListen: f.httpListen, DebugPprof: f.debugPprof, Health: f.health}, nil
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
			cfg, err := f.config()
			if err != nil {
				return err
			}
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
