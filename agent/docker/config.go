package docker

import (
	"maps"
	"math"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"

	"github.com/tentacle-deploy/tentacle/internal/spec"
)

// Labels every container the agent creates carries, so that the agent (and
// an operator with `docker ps --filter label=…`) can tell what runs where.
const (
	LabelManaged        = "tentacle.managed"
	LabelApp            = "tentacle.app"
	LabelRelease        = "tentacle.release"
	LabelReleaseVersion = "tentacle.release.version"
	LabelDeployment     = "tentacle.deployment"
	LabelTask           = "tentacle.task"
)

// Name suffixes of the containers that exist only during a swap. They are
// fixed rather than random so that an attempt that crashed is found and
// cleaned up by the next one.
const (
	suffixNext     = ".next"
	suffixPrevious = ".previous"
)

// ContainerConfig turns a task's run spec into Docker create options for
// the image imageRef (normally "repo@sha256:…"). It is pure: no engine, no
// defaults other than spec.WithDefaults, and it does not modify t.
func ContainerConfig(t Task, imageRef string) (*container.Config, *container.HostConfig) {
	s := t.runSpec()
	cfg := &container.Config{
		Image: imageRef,
		Labels: map[string]string{
			LabelManaged:        "true",
			LabelApp:            t.Application,
			LabelRelease:        t.ReleaseID,
			LabelReleaseVersion: t.ReleaseVersion,
			LabelDeployment:     t.DeploymentID,
			LabelTask:           t.ID,
		},
		// Stored on the container so that any later stop (docker stop, the
		// next deployment, a daemon shutdown) gives the app the same grace.
		StopTimeout: stopSeconds(s.StopTimeout),
	}
	for _, e := range s.Env {
		cfg.Env = append(cfg.Env, e.Name+"="+e.Value)
	}
	if len(s.Command) > 0 {
		// Command replaces the image's CMD, as arguments to `docker run`
		// do; the image's ENTRYPOINT stays.
		cfg.Cmd = append([]string(nil), s.Command...)
	}
	if len(s.Entrypoint) > 0 {
		cfg.Entrypoint = append([]string(nil), s.Entrypoint...)
	}
	cfg.WorkingDir, cfg.User, cfg.StopSignal = s.WorkingDir, s.User, s.StopSignal
	for k, v := range s.Labels {
		// Validate rejects the tentacle. prefix; the agent's labels win anyway.
		if _, ours := cfg.Labels[k]; !ours {
			cfg.Labels[k] = v
		}
	}
	cfg.Healthcheck = healthConfig(s.Healthcheck)
	host := &container.HostConfig{
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyMode(s.RestartPolicy), MaximumRetryCount: s.RestartMaxRetries},
		Resources:     container.Resources{Memory: s.MemoryBytes, NanoCPUs: s.NanoCPUs},
	}
	for _, v := range s.Volumes {
		m := mount.Mount{Type: mount.TypeVolume, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly}
		if v.Bind() {
			m.Type = mount.TypeBind
		}
		host.Mounts = append(host.Mounts, m)
	}
	if len(s.Networks) > 0 {
		// The first network replaces the default bridge; see Networks for
		// the others.
		host.NetworkMode = container.NetworkMode(s.Networks[0].Name)
	}
	if s.Log.Driver != "" || len(s.Log.Options) > 0 {
		host.LogConfig = container.LogConfig{Type: s.Log.Driver, Config: maps.Clone(s.Log.Options)}
	}
	for _, h := range s.ExtraHosts {
		host.ExtraHosts = append(host.ExtraHosts, h.Name+":"+h.IP)
	}
	for _, p := range s.Ports {
		port := nat.Port(strconv.FormatUint(uint64(p.ContainerPort), 10) + "/" + p.Protocol)
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = nat.PortSet{}
			host.PortBindings = nat.PortMap{}
		}
		cfg.ExposedPorts[port] = struct{}{}
		binding := nat.PortBinding{HostIP: p.HostIP}
		if p.HostPort != 0 { // "" lets Docker pick a free port
			binding.HostPort = strconv.FormatUint(uint64(p.HostPort), 10)
		}
		host.PortBindings[port] = append(host.PortBindings[port], binding)
	}
	return cfg, host
}

// healthConfig is the HEALTHCHECK override, nil to keep the image's.
// Zero fields are filled in by the engine from the image.
func healthConfig(h *spec.Healthcheck) *container.HealthConfig {
	switch {
	case h == nil:
		return nil
	case h.Disable:
		return &container.HealthConfig{Test: []string{"NONE"}}
	}
	hc := &container.HealthConfig{Interval: h.Interval, Timeout: h.Timeout, Retries: h.Retries}
	if h.Command != "" {
		hc.Test = []string{"CMD-SHELL", h.Command}
	}
	return hc
}

// NetworkAttachment is one user-defined network the container joins.
type NetworkAttachment struct {
	Name     string
	Endpoint *network.EndpointSettings
}

// Networks lists the task's networks in order, with the endpoint settings
// to create the container with (the first) or connect it with (the rest:
// engines before API 1.44 take only one network at create). Pure, like
// ContainerConfig.
func Networks(t Task) []NetworkAttachment {
	var out []NetworkAttachment
	for _, n := range t.Spec.Networks {
		ep := &network.EndpointSettings{}
		if len(n.Aliases) > 0 {
			ep.Aliases = append([]string(nil), n.Aliases...)
		}
		out = append(out, NetworkAttachment{Name: n.Name, Endpoint: ep})
	}
	return out
}

// runSpec is the task's spec with defaults applied. The ports are copied
// first: spec.WithDefaults fills in their protocol in place, which would
// write to the caller's Task (and race with any other reader of it).
func (t Task) runSpec() spec.RunSpec {
	s := t.Spec
	s.Ports = append([]spec.Port(nil), s.Ports...)
	return s.WithDefaults()
}

// stopSeconds rounds up: Docker takes whole seconds, and a 1.5s grace
// must not become 1s.
func stopSeconds(d time.Duration) *int {
	n := int(math.Ceil(d.Seconds()))
	return &n
}
