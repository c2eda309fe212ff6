package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tentacle-deploy/tentacle/internal/spec"
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
}

func (c *cli) newAppCreateCmd() *cobra.Command {
	var f appFlags
	cmd := &cobra.Command{
		Use:   "create NAME --image REPO [flags] [-- COMMAND [ARG...]]",
		Short: "Create an application",
		Long: `Create an application: a container workload, one per target, named NAME.

--image is the image repository without tag or digest (those belong to a
release); a repository without a registry host is on Docker Hub.
Words after -- replace the image's CMD.

--port takes Docker's syntax: CONTAINER, HOST:CONTAINER or IP:HOST:CONTAINER
(IPv6 in brackets), each optionally followed by /tcp or /udp. A host port of 0,
or none, picks a free port.`,
		Example: `  tentaclectl app create web --image registry.example.com:5000/team/web \
      --port 8080:80 --env LOG_LEVEL=info --env DSN=postgres://db/app?sslmode=disable

  # Override the command, publish DNS on localhost only
  tentaclectl app create dns --image team/dns --port 127.0.0.1:53:53/udp \
      --ready-after 30s -- /dns --verbose`,
		Args: appCreateArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, command := args[0], args[1:]
			req, err := f.request(name, command)
			if err != nil {
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
	// Whatever the checks above missed (a NUL in the command) is still
	// caught here rather than by the server.
	if err := rs.Validate(); err != nil {
		return nil, badValue("%v", err)
	}
	return &tentaclev1.CreateApplicationRequest{
		Name:            name,
		ImageRepository: repo.String(),
		RunSpec:         runSpecToProto(rs),
	}, nil
}

func runSpecToProto(s spec.RunSpec) *tentaclev1.RunSpec {
	out := &tentaclev1.RunSpec{
		Command:       s.Command,
		ReadyAfter:    durationpb.New(s.ReadyAfter),
		StopTimeout:   durationpb.New(s.StopTimeout),
		RestartPolicy: s.RestartPolicy,
	}
	for _, e := range s.Env {
		out.Env = append(out.Env, &tentaclev1.EnvVar{Name: e.Name, Value: e.Value})
	}
	for _, p := range s.Ports {
		out.Ports = append(out.Ports, &tentaclev1.PortMapping{ContainerPort: p.ContainerPort, HostPort: p.HostPort, Protocol: p.Protocol, HostIp: p.HostIP})
	}
	return out
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
