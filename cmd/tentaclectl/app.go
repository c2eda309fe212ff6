package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tentacle-deploy/tentacle/internal/spec"
	"github.com/tentacle-deploy/tentacle/internal/specpb"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

func (c *cli) newAppCmd() *cobra.Command {
	return groupCmd("app", "Create and list applications (a container and how it runs)",
		c.newAppCreateCmd(), c.newAppListCmd("list"))
}

type appFlags struct {
	image       string
	env, ports  []string
	readyAfter  time.Duration
	stopTimeout time.Duration
	restart     string
	roles       []string

	entrypoint, workdir, user string
	volumes, networks         []string
	restartRetries            int
	labels, logOpts, hosts    []string
	memory, cpus              string
	healthCmd                 string
	healthInterval            time.Duration
	healthTimeout             time.Duration
	healthRetries             int
	noHealthcheck             bool
	stopSignal, pull          string
	logDriver                 string
	strategy                  string
	gateTimeout               time.Duration
}

func (c *cli) newAppCreateCmd() *cobra.Command {
	var f appFlags
	var rollout rolloutFlags
	cmd := &cobra.Command{
		Use:   "create NAME --image REPO [flags] [-- COMMAND [ARG...]]",
		Short: "Create an application",
		Long: `Create an application: a container workload, one per target, named NAME.

--image is the image repository without tag or digest (those belong to a
release); a repository without a registry host is on Docker Hub.
Words after -- replace the image's CMD.

--port takes Docker's syntax: CONTAINER, HOST:CONTAINER or IP:HOST:CONTAINER
(IPv6 in brackets), each optionally followed by /tcp or /udp. A host port of 0,
or none, picks a free port.

--volume SRC:DST[:ro] mounts a named volume (SRC without '/') or an existing
host directory (absolute SRC). --network NAME[:ALIAS,...] joins a user-defined
network, which the agent creates (bridge driver) when it is missing.
--pull defaults to if-not-present for releases pinned by digest and to always
for releases by tag. docs/RUNSPEC.md describes every field.`,
		Example: `  tentaclectl app create web --image registry.example.com:5000/team/web \
      --port 8080:80 --env LOG_LEVEL=info --env DSN=postgres://db/app?sslmode=disable

  # Override the command, publish DNS on localhost only
  tentaclectl app create dns --image team/dns --port 127.0.0.1:53:53/udp \
      --ready-after 30s -- /dns --verbose

  # Only on targets with role web; a volume, a config dir, a private network and limits
  tentaclectl app create api --image team/api --roles web \
      --volume api-data:/var/lib/api --volume /etc/api:/etc/api:ro \
      --network backend:api --memory 256m --cpus 0.5 --label com.example.team=core`,
		Args: appCreateArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, command := args[0], args[1:]
			req, err := f.request(name, command)
			if err != nil {
				return err
			}
			if req.Rollout, err = rollout.proto(cmd); err != nil {
				return err
			}
			resp, err := call(c, cmd, func(ctx context.Context, admin tentaclev1.AdminServiceClient) (*tentaclev1.CreateApplicationResponse, error) {
				return admin.CreateApplication(ctx, req)
			})
			if err != nil {
				return err
			}
			return c.render(resp, func(w io.Writer) {
				a := resp.GetApplication()
				fmt.Fprintf(w, "created application %s (%s)\n", cell(a.GetName()), cell(a.GetImageRepository()))
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.image, "image", "", "image repository, e.g. registry.example.com:5000/team/web (required)")
	// StringArray, not StringSlice: values may contain commas.
	fl.StringArrayVar(&f.env, "env", nil, "environment variable KEY=VALUE (repeatable)")
	fl.StringArrayVar(&f.ports, "port", nil, "published port [IP:]HOST:CONTAINER[/tcp|udp] or CONTAINER[/tcp|udp] (repeatable)")
	fl.DurationVar(&f.readyAfter, "ready-after", spec.DefaultReadyAfter, "how long a new container must keep running before its task succeeds")
	fl.DurationVar(&f.stopTimeout, "stop-timeout", spec.DefaultStopTimeout, "how long Docker waits for the old container to stop before killing it")
	fl.StringVar(&f.restart, "restart", spec.DefaultRestartPolicy, "Docker restart policy: no, always, unless-stopped or on-failure")
	fl.StringSliceVar(&f.roles, "roles", nil, "deploy only to targets carrying every one of these roles, e.g. web,eu")
	fl.StringVar(&f.entrypoint, "entrypoint", "", "replace the image's ENTRYPOINT with this program (arguments go after --)")
	fl.StringVar(&f.workdir, "workdir", "", "working directory in the container, an absolute path")
	fl.StringVar(&f.user, "user", "", "run as NAME|UID[:GROUP|GID]")
	fl.StringArrayVar(&f.volumes, "volume", nil, "mount SRC:DST[:ro]: SRC a volume name or an absolute host path (repeatable)")
	fl.StringArrayVar(&f.networks, "network", nil, "join user-defined network NAME[:ALIAS,...], created when missing (repeatable)")
	fl.IntVar(&f.restartRetries, "restart-max-retries", 0, "with --restart on-failure: give up after this many restarts (0: never)")
	fl.StringArrayVar(&f.labels, "label", nil, "container label KEY=VALUE, not starting with tentacle. (repeatable)")
	fl.StringVar(&f.memory, "memory", "", "memory limit, e.g. 256m or 1g")
	fl.StringVar(&f.cpus, "cpus", "", "CPU limit in CPUs, e.g. 0.5")
	fl.StringVar(&f.healthCmd, "health-cmd", "", "healthcheck command, run by the container's shell")
	fl.DurationVar(&f.healthInterval, "health-interval", 0, "time between healthchecks (0: the image's)")
	fl.DurationVar(&f.healthTimeout, "health-timeout", 0, "time one healthcheck may take (0: the image's)")
	fl.IntVar(&f.healthRetries, "health-retries", 0, "failed healthchecks before unhealthy (0: the image's)")
	fl.BoolVar(&f.noHealthcheck, "no-healthcheck", false, "disable the image's HEALTHCHECK")
	fl.StringVar(&f.stopSignal, "stop-signal", "", "signal that stops the container, e.g. SIGINT (default: the image's, else SIGTERM)")
	fl.StringVar(&f.pull, "pull", "", "pull policy: always or if-not-present (default: if-not-present for a digest, always for a tag)")
	fl.StringVar(&f.logDriver, "log-driver", "", "Docker logging driver, e.g. local or syslog (default: the daemon's)")
	fl.StringArrayVar(&f.logOpts, "log-opt", nil, "logging driver option KEY=VALUE (repeatable)")
	fl.StringArrayVar(&f.hosts, "add-host", nil, "add NAME:IP to /etc/hosts (repeatable)")
	fl.StringVar(&f.strategy, "strategy", "", "how a new release replaces the running container: recreate (default) or start-first")
	// Not --health-timeout: that is the Docker-style timeout of one check.
	fl.DurationVar(&f.gateTimeout, "health-gate-timeout", 0, "how long a deployment waits for the HEALTHCHECK's verdict (0: derived from the healthcheck)")
	rollout.add(cmd, "for deployments that do not set their own")
	_ = cmd.MarkFlagRequired("image")
	return cmd
}

// appCreateArgs accepts NAME, then optionally -- and the command.
func appCreateArgs(cmd *cobra.Command, args []string) error {
	names := args
	if dash := cmd.ArgsLenAtDash(); dash >= 0 {
		names = args[:dash]
		if dash == len(args) {
			return usageError{err: fmt.Errorf("nothing after --: give the command to run, or leave out --"), showUsage: true}
		}
	}
	switch {
	case len(names) == 0:
		return usageError{err: fmt.Errorf("missing NAME"), showUsage: true}
	case len(names) > 1:
		return usageError{err: fmt.Errorf("unexpected argument %q (put the container's command after --)", names[1]), showUsage: true}
	}
	return nil
}

// request validates the flags the way the server would, so that mistakes are
// reported against the flag that caused them, before anything is sent.
func (f appFlags) request(name string, command []string) (*tentaclev1.CreateApplicationRequest, error) {
	if err := spec.ValidateName("application name", name); err != nil {
		return nil, badValue("%v", err)
	}
	repo, err := spec.ParseRepository(f.image)
	if err != nil {
		return nil, badValue("--image: %v", err)
	}
	var rs spec.RunSpec
	// Validating the spec as it grows finds the flag that broke it, such as
	// the second --env of a name; the field prefix is replaced by the flag.
	for i, s := range f.env {
		e, err := spec.ParseEnvVar(s)
		if err != nil {
			return nil, badValue("--env %q: %v", s, err)
		}
		rs.Env = append(rs.Env, e)
		if err := (spec.RunSpec{Env: rs.Env}).Validate(); err != nil {
			return nil, badValue("--env %q: %s", s, strings.TrimPrefix(err.Error(), fmt.Sprintf("env[%d]: ", i)))
		}
	}
	for i, s := range f.ports {
		p, err := spec.ParsePort(s)
		if err != nil {
			return nil, badValue("--port %q: %v", s, err)
		}
		rs.Ports = append(rs.Ports, p)
		if err := (spec.RunSpec{Ports: rs.Ports}).Validate(); err != nil {
			return nil, badValue("--port %q: %s", s, strings.TrimPrefix(err.Error(), fmt.Sprintf("ports[%d]: ", i)))
		}
	}
	checks := []struct {
		flag, field string
		spec        spec.RunSpec
	}{
		{"--ready-after", "ready_after", spec.RunSpec{ReadyAfter: f.readyAfter}},
		{"--stop-timeout", "stop_timeout", spec.RunSpec{StopTimeout: f.stopTimeout}},
		{"--restart", "restart_policy", spec.RunSpec{RestartPolicy: f.restart}},
	}
	for _, ch := range checks {
		if err := ch.spec.Validate(); err != nil {
			return nil, badValue("%s: %s", ch.flag, strings.TrimPrefix(err.Error(), ch.field+": "))
		}
	}
	rs.Command, rs.ReadyAfter, rs.StopTimeout, rs.RestartPolicy = command, f.readyAfter, f.stopTimeout, f.restart
	if err := f.container(&rs); err != nil {
		return nil, err
	}
	// Whatever the checks above missed (a NUL in the command) is still
	// caught here rather than by the server.
	if err := rs.Validate(); err != nil {
		return nil, badValue("%v", err)
	}
	for _, r := range f.roles {
		if err := spec.ValidateName("--roles", r); err != nil {
			return nil, badValue("%v", err)
		}
	}
	return &tentaclev1.CreateApplicationRequest{
		Name:            name,
		ImageRepository: repo.String(),
		RunSpec:         specpb.ToProto(rs),
		Roles:           f.roles,
	}, nil
}

// container reads the flags that shape the container beyond env, ports
// and timings into rs, each error naming its flag.
func (f appFlags) container(rs *spec.RunSpec) error {
	if f.entrypoint != "" {
		rs.Entrypoint = []string{f.entrypoint}
	}
	rs.WorkingDir, rs.User, rs.RestartMaxRetries = f.workdir, f.user, f.restartRetries
	rs.StopSignal, rs.PullPolicy, rs.Log.Driver = f.stopSignal, f.pull, f.logDriver
	rs.Strategy, rs.HealthTimeout = f.strategy, f.gateTimeout
	for _, s := range f.volumes {
		v, err := spec.ParseVolume(s)
		if err != nil {
			return badValue("--volume %q: %v", s, err)
		}
		rs.Volumes = append(rs.Volumes, v)
	}
	for _, s := range f.networks {
		n, err := spec.ParseNetwork(s)
		if err != nil {
			return badValue("--network %q: %v", s, err)
		}
		rs.Networks = append(rs.Networks, n)
	}
	for _, s := range f.hosts {
		h, err := spec.ParseExtraHost(s)
		if err != nil {
			return badValue("--add-host %q: %v", s, err)
		}
		rs.ExtraHosts = append(rs.ExtraHosts, h)
	}
	var err error
	if rs.Labels, err = keyValues("--label", f.labels); err != nil {
		return err
	}
	if rs.Log.Options, err = keyValues("--log-opt", f.logOpts); err != nil {
		return err
	}
	if f.memory != "" {
		if rs.MemoryBytes, err = spec.ParseMemory(f.memory); err != nil {
			return badValue("--memory: %v", err)
		}
	}
	if f.cpus != "" {
		if rs.NanoCPUs, err = spec.ParseCPUs(f.cpus); err != nil {
			return badValue("--cpus: %v", err)
		}
	}
	if f.noHealthcheck || f.healthCmd != "" || f.healthInterval != 0 || f.healthTimeout != 0 || f.healthRetries != 0 {
		rs.Healthcheck = &spec.Healthcheck{Disable: f.noHealthcheck, Command: f.healthCmd,
			Interval: f.healthInterval, Timeout: f.healthTimeout, Retries: f.healthRetries}
	}
	checks := []struct {
		flag, field string
		spec        spec.RunSpec
	}{
		{"--workdir", "working_dir", spec.RunSpec{WorkingDir: rs.WorkingDir}},
		{"--user", "user", spec.RunSpec{User: rs.User}},
		{"--restart-max-retries", "restart_max_retries", spec.RunSpec{RestartMaxRetries: rs.RestartMaxRetries, RestartPolicy: rs.RestartPolicy}},
		{"--label", "labels", spec.RunSpec{Labels: rs.Labels}},
		{"--memory", "memory_bytes", spec.RunSpec{MemoryBytes: rs.MemoryBytes}},
		{"--cpus", "nano_cpus", spec.RunSpec{NanoCPUs: rs.NanoCPUs}},
		{"--no-healthcheck", "healthcheck", spec.RunSpec{Healthcheck: &spec.Healthcheck{Disable: f.noHealthcheck, Command: f.healthCmd}}},
		{"--health-interval", "healthcheck.interval", spec.RunSpec{Healthcheck: &spec.Healthcheck{Interval: f.healthInterval}}},
		{"--health-timeout", "healthcheck.timeout", spec.RunSpec{Healthcheck: &spec.Healthcheck{Timeout: f.healthTimeout}}},
		{"--health-retries", "healthcheck.retries", spec.RunSpec{Healthcheck: &spec.Healthcheck{Retries: f.healthRetries}}},
		{"--stop-signal", "stop_signal", spec.RunSpec{StopSignal: rs.StopSignal}},
		{"--pull", "pull_policy", spec.RunSpec{PullPolicy: rs.PullPolicy}},
		{"--log-driver", "log.driver", spec.RunSpec{Log: spec.LogConfig{Driver: rs.Log.Driver}}},
		{"--log-opt", "log.options", spec.RunSpec{Log: spec.LogConfig{Options: rs.Log.Options}}},
		{"--strategy", "strategy", spec.RunSpec{Strategy: rs.Strategy, Ports: rs.Ports}},
		{"--health-gate-timeout", "health_timeout", spec.RunSpec{HealthTimeout: rs.HealthTimeout, ReadyAfter: rs.ReadyAfter}},
	}
	for _, ch := range checks {
		if err := ch.spec.Validate(); err != nil {
			return badValue("%s: %s", ch.flag, strings.TrimPrefix(err.Error(), ch.field+": "))
		}
	}
	return nil
}

// keyValues parses repeated KEY=VALUE flags into a map; a key given twice
// is an error rather than a silent override.
func keyValues(flag string, values []string) (map[string]string, error) {
	if len(values) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, s := range values {
		k, v, err := spec.ParseKeyValue(s)
		if err != nil {
			return nil, badValue("%s %q: %v", flag, s, err)
		}
		if _, dup := out[k]; dup {
			return nil, badValue("%s %q: key %q is set twice", flag, s, k)
		}
		out[k] = v
	}
	return out, nil
}

// newAppListCmd builds "app list", also registered as the shortcut "apps".
func (c *cli) newAppListCmd(use string) *cobra.Command {
	cmd := &cobra.Command{
		Use:     use,
		Short:   "List applications",
		Example: "  tentaclectl app list\n  tentaclectl apps -o json",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := call(c, cmd, func(ctx context.Context, admin tentaclev1.AdminServiceClient) (*tentaclev1.ListApplicationsResponse, error) {
				return admin.ListApplications(ctx, &tentaclev1.ListApplicationsRequest{})
			})
			if err != nil {
				return err
			}
			return c.render(resp, func(w io.Writer) {
				row(w, "NAME", "IMAGE", "PORTS", "CREATED")
				for _, a := range resp.GetApplications() {
					row(w, cell(a.GetName()), cell(a.GetImageRepository()), cell(formatPorts(a.GetRunSpec().GetPorts())), c.formatTime(a.GetCreatedAt()))
				}
			})
		},
	}
	if use == "list" {
		cmd.Aliases = []string{"ls"}
	} else {
		cmd.Short += " (same as app list)"
	}
	return cmd
}

func formatPorts(ports []*tentaclev1.PortMapping) string {
	var out []string
	for _, p := range ports {
		out = append(out, spec.Port{ContainerPort: p.GetContainerPort(), HostPort: p.GetHostPort(), Protocol: p.GetProtocol(), HostIP: p.GetHostIp()}.String())
	}
	return strings.Join(out, ",")
}
