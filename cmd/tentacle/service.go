package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/kardianos/service"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/tentacle-deploy/tentacle/agent"
	tservice "github.com/tentacle-deploy/tentacle/agent/service"
	"github.com/tentacle-deploy/tentacle/internal/logging"
)

// run is `tentacle run`: in the foreground the agent runs until the
// signal context ends; under a service manager it runs through kardianos
// (tservice.Program), which on Windows is what talks to the SCM.
func (g *globals) run(cmd *cobra.Command) error {
	interactive := service.Interactive()
	err := g.runWith(cmd, interactive)
	if err != nil && !interactive && runtime.GOOS == "windows" {
		// Before the log file is open a Windows service has nowhere else to
		// say why it stopped.
		reportToEventLog(err)
	}
	return err
}

func (g *globals) runWith(cmd *cobra.Command, interactive bool) error {
	cfg, _, err := g.load(cmd)
	if err != nil {
		return err
	}
	out, closeLog, err := tservice.LogOutput(cfg.DataDir, interactive)
	if err != nil {
		return err
	}
	defer closeLog()
	log, err := logging.New(cfg.Log, out)
	if err != nil {
		return err
	}
	defer log.Sync()
	if interactive {
		return runAgent(cmd.Context(), cfg, log)
	}
	prog := tservice.NewProgram(cmd.Context(), func(ctx context.Context) error { return runAgent(ctx, cfg, log) }, log)
	s, err := service.New(prog, &service.Config{Name: tservice.Name})
	if err != nil {
		return err
	}
	if err := s.Run(); err != nil {
		log.Error("service", zap.Error(err))
		return err
	}
	return nil
}

func reportToEventLog(err error) {
	s, e := service.New(nil, &service.Config{Name: tservice.Name})
	if e != nil {
		return
	}
	if l, e := s.SystemLogger(nil); e == nil {
		_ = l.Error(err)
	}
}

func serviceCommands(g *globals) []*cobra.Command {
	control := func(use, short string, f func(tservice.Controller, *cobra.Command) error) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				s, err := newController()
				if err != nil {
					return err
				}
				return f(tservice.NewController(s), cmd)
			},
		}
	}
	mutating := func(f func(tservice.Controller, *cobra.Command) error) func(tservice.Controller, *cobra.Command) error {
		return func(s tservice.Controller, cmd *cobra.Command) error {
			if err := needRoot(cmd.Name()); err != nil {
				return err
			}
			return f(s, cmd)
		}
	}
	install := &cobra.Command{
		Use:   "install [--config FILE]",
		Short: "Install the agent as a system service running `tentacle run --config FILE`",
		Long: `Install the agent as a system service (systemd, SysV or OpenRC on Linux, the
Service Control Manager on Windows) that runs "tentacle run --config FILE" as
root (LocalSystem on Windows): the Docker socket is root-equivalent anyway.
--data-dir, --log-format and --log-level given here are passed on too.
Install does not start the service: run "tentacle start".`,
		Example: "  sudo tentacle install --config /etc/tentacle/agent.yaml",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return g.install(cmd) },
	}
	var unitBinary, unitDataDir string
	unit := &cobra.Command{
		Use:    "systemd-unit",
		Short:  "Print the systemd unit the packages ship (used by make packages)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := tservice.PackageUnit(unitBinary, g.config, unitDataDir)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), u)
			return err
		},
	}
	unit.Flags().StringVar(&unitBinary, "binary", "/usr/bin/tentacle", "where the package installs the binary")
	unit.Flags().StringVar(&unitDataDir, "unit-data-dir", agent.DefaultDataDir(), "the data dir the unit may write")
	return []*cobra.Command{
		install, unit,
		control("uninstall", "Stop and remove the system service (config and data dir are kept; a packaged unit: remove the package)",
			mutating(func(s tservice.Controller, cmd *cobra.Command) error {
				if unit, ok := tservice.PackagedUnit(); ok {
					return fmt.Errorf("the service comes from the tentacle package (%s): remove the package instead (apt remove tentacle, or dnf remove tentacle)", unit)
				}
				return tservice.Uninstall(s, cmd.OutOrStdout())
			})),
		control("start", "Start the system service",
			mutating(func(s tservice.Controller, cmd *cobra.Command) error { return tservice.Start(s, cmd.OutOrStdout()) })),
		control("stop", "Stop the system service",
			mutating(func(s tservice.Controller, cmd *cobra.Command) error { return tservice.Stop(s, cmd.OutOrStdout()) })),
		control("restart", "Restart the system service",
			mutating(func(s tservice.Controller, cmd *cobra.Command) error { return tservice.Restart(s, cmd.OutOrStdout()) })),
		control("status", "Print whether the service is installed and running, and its server",
			func(s tservice.Controller, cmd *cobra.Command) error {
				cfg, _, err := g.load(cmd)
				tservice.WriteStatus(cmd.OutOrStdout(), s, tservice.Server(cfg, err))
				return nil
			}),
	}
}

func (g *globals) install(cmd *cobra.Command) error {
	if err := needRoot("install"); err != nil {
		return err
	}
	cfgPath, err := filepath.Abs(g.config)
	if err != nil {
		return err
	}
	// The service runs with --config, which makes the file required; a
	// missing one is only a warning so the service can be installed first.
	cfg, err := agent.LoadConfig(cfgPath, true)
	if err != nil {
		return err
	}
	_, statErr := os.Stat(cfgPath)
	var extra []string
	if g.dataDir != "" {
		cfg.DataDir, _ = filepath.Abs(g.dataDir)
		extra = append(extra, "--data-dir", cfg.DataDir)
	}
	for _, f := range []string{"log-format", "log-level"} {
		if cmd.Flags().Changed(f) {
			extra = append(extra, "--"+f, cmd.Flag(f).Value.String())
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	spec := tservice.Spec{Executable: exe, ConfigPath: cfgPath, DataDir: cfg.DataDir, ExtraArgs: extra}
	c, err := tservice.NewConfig(spec)
	if err != nil {
		return err
	}
	s, err := service.New(nil, c)
	if err != nil {
		return err
	}
	if s.Platform() == "linux-systemd" {
		if err := tservice.CheckSystemdPaths([]tservice.NamedPath{
			{What: "the tentacle binary", Path: exe},
			{What: "the config", Path: cfgPath},
			{What: "the data dir", Path: cfg.DataDir},
			{What: "docker_config", Path: cfg.DockerConfig},
		}); err != nil {
			return err
		}
	}
	// The unit's ReadWritePaths name the data dir: create it as enroll would.
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := tservice.Install(tservice.NewController(s), cmd.OutOrStdout(), spec); err != nil {
		return err
	}
	w := cmd.ErrOrStderr()
	if errors.Is(statErr, fs.ErrNotExist) {
		fmt.Fprintf(w, "warning: %s does not exist yet: the service will not start until it does\n", cfgPath)
	}
	if _, err := agent.ReadEnrollment(cfg.DataDir); errors.Is(err, agent.ErrNotEnrolled) {
		fmt.Fprintf(w, "warning: not enrolled yet: run `tentacle enroll --config %s --server HOST:PORT --token TOKEN` before starting\n", cfgPath)
	}
	return nil
}

// newController is the kardianos service for control commands; they do not
// need the installed arguments.
func newController() (service.Service, error) {
	return service.New(nil, &service.Config{Name: tservice.Name})
}

// needRoot fails early with a clear message instead of a bare "exit status
// 1" from systemctl. Windows reports "Access is denied" itself.
func needRoot(what string) error {
	if uid := os.Geteuid(); uid > 0 {
		return fmt.Errorf("%s needs root: the agent is a system service (try: sudo tentacle %s)", what, what)
	}
	return nil
}
