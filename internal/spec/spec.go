// Package spec holds the run spec of an application and the validation of
// everything a user types about images: repositories, tags, digests, env var
// names and ports. Server and agent both use it: the server rejects bad input
// before anything is stored, the agent re-checks what it is asked to run.
//
// It must not import Docker, gRPC or store packages: it is plain data.
package spec

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// RunSpec is how an application's container is run.
type RunSpec struct {
	Env           []EnvVar      `json:"env,omitempty"`
	Command       []string      `json:"command,omitempty"`
	Ports         []Port        `json:"ports,omitempty"`
	ReadyAfter    time.Duration `json:"ready_after,omitempty"`
	StopTimeout   time.Duration `json:"stop_timeout,omitempty"`
	RestartPolicy string        `json:"restart_policy,omitempty"`
}

// EnvVar is one environment variable.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Port publishes ContainerPort/Protocol on HostIP:HostPort.
type Port struct {
	ContainerPort uint32 `json:"container_port"`
	HostPort      uint32 `json:"host_port"`
	Protocol      string `json:"protocol,omitempty"`
	HostIP        string `json:"host_ip,omitempty"`
}

// Defaults applied when a spec leaves a field empty.
const (
	DefaultReadyAfter    = 10 * time.Second
	DefaultStopTimeout   = 10 * time.Second
	DefaultRestartPolicy = "unless-stopped"
	MaxReadyAfter        = time.Hour
)

var (
	envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// Application and environment names double as container names and
	// label values, so they stay within Docker's container-name alphabet.
	nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)
)

// WithDefaults returns a copy with empty fields set to their defaults.
func (s RunSpec) WithDefaults() RunSpec {
	if s.ReadyAfter == 0 {
		s.ReadyAfter = DefaultReadyAfter
	}
	if s.StopTimeout == 0 {
		s.StopTimeout = DefaultStopTimeout
	}
	if s.RestartPolicy == "" {
		s.RestartPolicy = DefaultRestartPolicy
	}
	// Copy the ports: a value receiver still shares the caller's slice.
	s.Ports = append([]Port(nil), s.Ports...)
	for i := range s.Ports {
		if s.Ports[i].Protocol == "" {
			s.Ports[i].Protocol = "tcp"
		}
	}
	return s
}

// Validate reports every problem of the spec at once, each naming its field.
func (s RunSpec) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for i, e := range s.Env {
		if !envNameRE.MatchString(e.Name) {
			errs = append(errs, fmt.Errorf("env[%d]: invalid variable name %q: use letters, digits and _, not starting with a digit", i, e.Name))
			continue
		}
		if seen[e.Name] {
			errs = append(errs, fmt.Errorf("env[%d]: variable %q is set twice", i, e.Name))
		}
		seen[e.Name] = true
		if strings.ContainsRune(e.Value, 0) {
			errs = append(errs, fmt.Errorf("env[%d]: value of %q contains a NUL byte", i, e.Name))
		}
	}
	bound := map[string]bool{}
	for i, p := range s.Ports {
		if p.ContainerPort < 1 || p.ContainerPort > 65535 {
			errs = append(errs, fmt.Errorf("ports[%d]: container port %d out of range 1-65535", i, p.ContainerPort))
		}
		if p.HostPort > 65535 {
			errs = append(errs, fmt.Errorf("ports[%d]: host port %d out of range 1-65535 (0 picks a free port)", i, p.HostPort))
		}
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		if proto != "tcp" && proto != "udp" {
			errs = append(errs, fmt.Errorf("ports[%d]: protocol %q: use tcp or udp", i, p.Protocol))
		}
		if p.HostIP != "" && !validIP(p.HostIP) {
			errs = append(errs, fmt.Errorf("ports[%d]: host IP %q is not an IP address", i, p.HostIP))
		}
		if p.HostPort != 0 {
			ip := p.HostIP
			if ip == "0.0.0.0" || ip == "::" {
				ip = "" // all addresses: conflicts with any other binding of the port
			}
			key := fmt.Sprintf("%s/%d/%s", ip, p.HostPort, proto)
			if bound[key] {
				errs = append(errs, fmt.Errorf("ports[%d]: host port %d/%s is published twice", i, p.HostPort, proto))
			}
			bound[key] = true
		}
	}
	if s.ReadyAfter < 0 || s.ReadyAfter > MaxReadyAfter {
		errs = append(errs, fmt.Errorf("ready_after: %s out of range 0-%s", s.ReadyAfter, MaxReadyAfter))
	}
	if s.StopTimeout < 0 || s.StopTimeout > 10*time.Minute {
		errs = append(errs, fmt.Errorf("stop_timeout: %s out of range 0-10m", s.StopTimeout))
	}
	switch s.RestartPolicy {
	case "", "no", "always", "unless-stopped", "on-failure":
	default:
		errs = append(errs, fmt.Errorf("restart_policy: %q: use no, always, unless-stopped or on-failure", s.RestartPolicy))
	}
	for i, c := range s.Command {
		if strings.ContainsRune(c, 0) {
			errs = append(errs, fmt.Errorf("command[%d]: contains a NUL byte", i))
		}
	}
	return errors.Join(errs...)
}

// ValidateName checks an application or environment name; field names the
// flag or field so the error tells the user where to look.
func ValidateName(field, name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%s: invalid name %q: use 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit", field, name)
	}
	return nil
}
