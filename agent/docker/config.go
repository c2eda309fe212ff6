package docker

import (
	"math"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
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
	host := &container.HostConfig{
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyMode(s.RestartPolicy)},
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
