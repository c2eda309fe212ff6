package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/docker/docker/client"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/tentacle-deploy/tentacle/agent"
	"github.com/tentacle-deploy/tentacle/agent/creds"
	"github.com/tentacle-deploy/tentacle/agent/docker"
	"github.com/tentacle-deploy/tentacle/internal/logging"
	"github.com/tentacle-deploy/tentacle/internal/version"
)

type globals struct {
	config  string
	dataDir string
	log     logging.Options
	// metricsAddr is run's --metrics-addr.
	metricsAddr string
}

func newRootCommand() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "tentacle",
		Short:         "Tentacle agent: dials the server, runs deployments with the local Docker engine",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.config, "config", agent.DefaultConfigPath(), "agent config file (YAML)")
	pf.StringVar(&g.dataDir, "data-dir", "", "data directory (overrides TENTACLE_DATA_DIR and data_dir in the config)")
	pf.StringVar(&g.log.Format, "log-format", "", "log format: console or json (overrides TENTACLE_LOG_FORMAT and the config)")
	pf.StringVar(&g.log.Level, "log-level", "", "log level: debug, info, warn or error (overrides TENTACLE_LOG_LEVEL and the config)")
	root.AddCommand(serviceCommands(g)...)
	root.AddCommand(enrollCommand(g), runCommand(g), &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), version.Version) },
	})
	return root
}

// load reads the config (optional unless --config was given) and applies
// the flags that override it.
func (g *globals) load(cmd *cobra.Command) (agent.Config, *zap.Logger, error) {
	cfg, err := agent.LoadConfig(g.config, !cmd.Flags().Changed("config"))
	if err != nil {
		return agent.Config{}, nil, err
	}
	if g.dataDir != "" {
		cfg.DataDir, _ = filepath.Abs(g.dataDir)
	}
	if g.log.Format != "" {
		cfg.Log.Format = g.log.Format
	}
	if g.log.Level != "" {
		cfg.Log.Level = g.log.Level
	}
	if g.metricsAddr != "" {
		if msg := agent.CheckMetricsAddr(g.metricsAddr); msg != "" {
			return agent.Config{}, nil, fmt.Errorf("--metrics-addr: %s", msg)
		}
		cfg.MetricsAddr = g.metricsAddr
	}
	log, err := logging.New(cfg.Log, nil)
	return cfg, log, err
}

func enrollCommand(g *globals) *cobra.Command {
	var o agent.EnrollOptions
	cmd := &cobra.Command{
		Use:   "enroll --server HOST:PORT --token TOKEN",
		Short: "Enroll this host with a server using a one-time join token",
		Long: `Enroll this host with a server using a join token from
"tentaclectl token create". The agent trusts only a server whose CA matches
the hash the token carries; it creates its own key (never sent anywhere) and
stores key, certificate and CA in the data directory.`,
		Example: "  tentacle enroll --server tentacle.example.com:8443 --token TNT1.abcdef.…",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := g.load(cmd)
			if err != nil {
				return err
			}
			if o.Server == "" || o.Token == "" {
				return fmt.Errorf("--server and --token are required")
			}
			o.DataDir = cfg.DataDir
			id, err := agent.Enroll(cmd.Context(), o)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "enrolled as target %s (id %s) in environment %s with %s\ndata dir: %s\nnext: tentacle run --config %s\n",
				id.TargetName, id.TargetID, id.Environment, id.Server, o.DataDir, g.config)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.Server, "server", "", "server address HOST:PORT")
	cmd.Flags().StringVar(&o.Token, "token", "", "join token from `tentaclectl token create`")
	cmd.Flags().BoolVar(&o.Force, "force", false, "replace an existing enrollment")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 30*time.Second, "how long to wait for the server")
	return cmd
}

func runCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "run",
		Short:   "Run the agent in the foreground",
		Example: "  tentacle run --config /etc/tentacle/agent.yaml",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return g.run(cmd) },
	}
	cmd.Flags().StringVar(&g.metricsAddr, "metrics-addr", "", "HOST:PORT to serve Prometheus /metrics on over plain HTTP, e.g. 127.0.0.1:9480 (overrides TENTACLE_METRICS_ADDR and metrics_addr; default: none)")
	return cmd
}

// runAgent runs the agent until ctx ends; `tentacle run` in the foreground
// and the system service (cmd/tentacle/service.go) both call it.
func runAgent(ctx context.Context, cfg agent.Config, log *zap.Logger) error {
	cs, err := creds.New(cfg.Registries, cfg.DockerConfig)
	if err != nil {
		return err
	}
	var opts []client.Opt
	if cfg.DockerHost != "" {
		opts = append(opts, client.WithHost(cfg.DockerHost))
	}
	cli, err := docker.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cli.Close()
	d := docker.New(cli, cs, log.Named("docker"))
	d.SetContainerPrefix(cfg.ContainerPrefix)
	a, err := agent.New(cfg, d, log)
	if err != nil {
		return err
	}
	if cfg.MetricsAddr != "" {
		m, err := a.ServeMetrics(cfg.MetricsAddr)
		if err != nil {
			return err
		}
		defer m.Close()
	}
	return a.Run(ctx)
}
