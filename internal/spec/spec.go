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
	"path"
	"regexp"
	"sort"
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

	// Entrypoint replaces the image's ENTRYPOINT when non-empty.
	Entrypoint []string `json:"entrypoint,omitempty"`
	// WorkingDir replaces the image's WORKDIR; an absolute path.
	WorkingDir string `json:"working_dir,omitempty"`
	// User runs the process as NAME|UID[:GROUP|GID] instead of the image's USER.
	User string `json:"user,omitempty"`
	// Volumes are named volumes and bind mounts.
	Volumes []Volume `json:"volumes,omitempty"`
	// Networks are user-defined networks the container joins; the agent
	// creates a missing one with the bridge driver.
	Networks []Network `json:"networks,omitempty"`
	// RestartMaxRetries caps the restarts of the on-failure policy; 0 is
	// unlimited.
	RestartMaxRetries int `json:"restart_max_retries,omitempty"`
	// Labels are added to the container's; keys must not start with
	// "tentacle.", which the agent's own labels use.
	Labels map[string]string `json:"labels,omitempty"`
	// MemoryBytes limits the container's memory; 0 is no limit.
	MemoryBytes int64 `json:"memory_bytes,omitempty"`
	// NanoCPUs limits CPU time in billionths of a CPU; 0 is no limit.
	NanoCPUs int64 `json:"nano_cpus,omitempty"`
	// Healthcheck overrides or disables the image's HEALTHCHECK; nil keeps it.
	Healthcheck *Healthcheck `json:"healthcheck,omitempty"`
	// StopSignal replaces the image's STOPSIGNAL, e.g. "SIGINT".
	StopSignal string `json:"stop_signal,omitempty"`
	// PullPolicy is "always" or "if-not-present"; empty pulls a digest only
	// when it is missing and a tag always.
	PullPolicy string `json:"pull_policy,omitempty"`
	// Log chooses the container's logging driver and its options.
	Log LogConfig `json:"log,omitempty"`
	// ExtraHosts are added to the container's /etc/hosts.
	ExtraHosts []ExtraHost `json:"extra_hosts,omitempty"`
	// Strategy is how a new container replaces the running one:
	// StrategyRecreate (also "") or StrategyStartFirst.
	Strategy string `json:"strategy,omitempty"`
	// HealthTimeout bounds the wait for the HEALTHCHECK's verdict; 0
	// derives the bound from the healthcheck's timings.
	HealthTimeout time.Duration `json:"health_timeout,omitempty"`
}

// Volume mounts Source at Target in the container. A Source without '/' is
// a named volume (created by Docker when missing); an absolute Source is a
// bind mount of a host path, which must exist.
type Volume struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// Bind reports whether the volume is a bind mount of a host path.
func (v Volume) Bind() bool { return strings.Contains(v.Source, "/") }

// Network is a user-defined network the container joins, reachable there
// under its name and Aliases.
type Network struct {
	Name    string   `json:"name"`
	Aliases []string `json:"aliases,omitempty"`
}

// Healthcheck overrides the image's HEALTHCHECK. Zero durations and
// retries keep the image's values; Disable turns the image's check off and
// must be the only field set.
type Healthcheck struct {
	Disable  bool          `json:"disable,omitempty"`
	Command  string        `json:"command,omitempty"` // run by the container's shell
	Interval time.Duration `json:"interval,omitempty"`
	Timeout  time.Duration `json:"timeout,omitempty"`
	Retries  int           `json:"retries,omitempty"`
}

// LogConfig is a Docker logging driver and its options; an empty Driver
// keeps the daemon's default driver.
type LogConfig struct {
	Driver  string            `json:"driver,omitempty"`
	Options map[string]string `json:"options,omitempty"`
}

// ExtraHost maps Name to IP in the container's /etc/hosts.
type ExtraHost struct {
	Name string `json:"name"`
	IP   string `json:"ip"`
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

	// MinMemoryBytes is the smallest memory limit Docker accepts.
	MinMemoryBytes = 6 << 20
	// MinNanoCPUs is the smallest CPU limit Docker accepts, 0.01 CPU.
	MinNanoCPUs = 10_000_000

	PullAlways       = "always"
	PullIfNotPresent = "if-not-present"

	// StrategyRecreate stops the old container before the new one starts;
	// an empty Strategy means the same.
	StrategyRecreate = "recreate"
	// StrategyStartFirst starts the new container beside the old one and
	// removes the old one only once the new one has passed the health gate.
	StrategyStartFirst = "start-first"
	MaxHealthTimeout   = 2 * time.Hour

	// ReservedLabelPrefix starts the labels the agent sets itself.
	ReservedLabelPrefix = "tentacle."
)

var (
	envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// Application and environment names double as container names and
	// label values, so they stay within Docker's container-name alphabet.
	nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)
	// A user or group name (as useradd allows) or a numeric ID.
	userPartRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$`)
	// Docker's own rule for volume names.
	volumeNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]+$`)
	// Docker's rule for network names, with a length cap.
	networkNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	// Host names: network aliases and extra hosts.
	hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]{0,252})$`)
	// SIGTERM, TERM, SIGRTMIN+3, or a signal number.
	stopSignalRE  = regexp.MustCompile(`^((SIG)?[A-Z][A-Z0-9]{0,15}([+-][0-9]{1,2})?|[1-9][0-9]?)$`)
	logDriverRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$`)
	labelKeyRE    = regexp.MustCompile(`^[^\x00=]+$`)
	predefinedNet = map[string]bool{"bridge": true, "host": true, "none": true, "default": true}
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
	errs = append(errs, s.validateProcess()...)
	errs = append(errs, s.validateMounts()...)
	errs = append(errs, s.validateNetworks()...)
	errs = append(errs, s.validateLimits()...)
	errs = append(errs, s.validateRuntime()...)
	errs = append(errs, s.validateRollout()...)
	return errors.Join(errs...)
}

// validateRollout checks the strategy and the health gate's timeout.
func (s RunSpec) validateRollout() []error {
	var errs []error
	switch s.Strategy {
	case "", StrategyRecreate:
	case StrategyStartFirst:
		for _, p := range s.Ports {
			if p.HostPort == 0 {
				continue
			}
			proto := p.Protocol
			if proto == "" {
				proto = "tcp"
			}
			errs = append(errs, fmt.Errorf("strategy: start-first runs the new container beside the old one, so fixed host port %d/%s would clash; publish the port without a host port, or use strategy recreate", p.HostPort, proto))
		}
	default:
		errs = append(errs, fmt.Errorf("strategy: %q: use recreate or start-first", s.Strategy))
	}
	ready := s.ReadyAfter
	if ready == 0 {
		ready = DefaultReadyAfter
	}
	switch {
	case s.HealthTimeout < 0 || s.HealthTimeout > MaxHealthTimeout:
		errs = append(errs, fmt.Errorf("health_timeout: %s out of range 0-%s (0 derives it from the healthcheck)", s.HealthTimeout, MaxHealthTimeout))
	case s.HealthTimeout != 0 && s.HealthTimeout < ready && ready <= MaxReadyAfter:
		errs = append(errs, fmt.Errorf("health_timeout: %s is shorter than ready_after %s, so the health gate could never pass: raise health_timeout or lower ready_after", s.HealthTimeout, ready))
	}
	return errs
}

// validateProcess checks what the container's process runs as.
func (s RunSpec) validateProcess() []error {
	var errs []error
	for i, c := range s.Entrypoint {
		if strings.ContainsRune(c, 0) {
			errs = append(errs, fmt.Errorf("entrypoint[%d]: contains a NUL byte", i))
		}
	}
	if s.WorkingDir != "" && (!path.IsAbs(s.WorkingDir) || strings.ContainsRune(s.WorkingDir, 0)) {
		errs = append(errs, fmt.Errorf("working_dir: %q: use an absolute path, e.g. /app", s.WorkingDir))
	}
	if s.User != "" {
		user, group, hasGroup := strings.Cut(s.User, ":")
		if !userPartRE.MatchString(user) || (hasGroup && !userPartRE.MatchString(group)) {
			errs = append(errs, fmt.Errorf("user: %q: use NAME or UID, optionally followed by :GROUP or :GID, e.g. 1000:1000", s.User))
		}
	}
	return errs
}

// validateMounts checks volumes and bind mounts.
func (s RunSpec) validateMounts() []error {
	var errs []error
	targets := map[string]bool{}
	for i, v := range s.Volumes {
		switch {
		case v.Source == "":
			errs = append(errs, fmt.Errorf("volumes[%d]: source is empty: use a volume name or an absolute host path", i))
		case v.Bind() && (!path.IsAbs(v.Source) || strings.ContainsRune(v.Source, 0)):
			errs = append(errs, fmt.Errorf("volumes[%d]: source %q: use a volume name (no '/') or an absolute host path", i, v.Source))
		case !v.Bind() && !volumeNameRE.MatchString(v.Source):
			errs = append(errs, fmt.Errorf("volumes[%d]: volume name %q: use 2 or more letters, digits, '_', '.' or '-', starting with a letter or digit", i, v.Source))
		}
		target := path.Clean(v.Target)
		switch {
		case !path.IsAbs(v.Target) || strings.ContainsRune(v.Target, 0):
			errs = append(errs, fmt.Errorf("volumes[%d]: target %q: use an absolute path in the container, e.g. /data", i, v.Target))
		case target == "/":
			errs = append(errs, fmt.Errorf("volumes[%d]: target \"/\": mount below the container's root, e.g. /data", i))
		case targets[target]:
			errs = append(errs, fmt.Errorf("volumes[%d]: target %q is mounted twice: give each mount its own target", i, v.Target))
		}
		targets[target] = true
	}
	return errs
}

// validateNetworks checks networks, their aliases and the extra hosts.
func (s RunSpec) validateNetworks() []error {
	var errs []error
	joined := map[string]bool{}
	for i, n := range s.Networks {
		switch {
		case !networkNameRE.MatchString(n.Name):
			errs = append(errs, fmt.Errorf("networks[%d]: name %q: use letters, digits, '_', '.' or '-', starting with a letter or digit", i, n.Name))
		case predefinedNet[n.Name]:
			errs = append(errs, fmt.Errorf("networks[%d]: %q is one of Docker's predefined networks: use a user-defined network name", i, n.Name))
		case joined[n.Name]:
			errs = append(errs, fmt.Errorf("networks[%d]: network %q is listed twice: give all its aliases in one entry", i, n.Name))
		}
		joined[n.Name] = true
		for j, a := range n.Aliases {
			if !hostnameRE.MatchString(a) {
				errs = append(errs, fmt.Errorf("networks[%d].aliases[%d]: %q: use a host name of letters, digits, '-', '_' and '.'", i, j, a))
			}
		}
	}
	for i, h := range s.ExtraHosts {
		if !hostnameRE.MatchString(h.Name) {
			errs = append(errs, fmt.Errorf("extra_hosts[%d]: host name %q: use letters, digits, '-', '_' and '.'", i, h.Name))
		}
		if !validIP(h.IP) {
			errs = append(errs, fmt.Errorf("extra_hosts[%d]: IP %q is not an IP address", i, h.IP))
		}
	}
	return errs
}

// validateLimits checks the restart, memory and CPU limits.
func (s RunSpec) validateLimits() []error {
	var errs []error
	switch {
	case s.RestartMaxRetries < 0:
		errs = append(errs, fmt.Errorf("restart_max_retries: %d is negative: use 0 for unlimited retries", s.RestartMaxRetries))
	case s.RestartMaxRetries > 0 && s.RestartPolicy != "on-failure":
		errs = append(errs, fmt.Errorf("restart_max_retries: only applies to restart_policy on-failure: set the policy to on-failure or leave out the retries"))
	}
	if s.MemoryBytes != 0 && s.MemoryBytes < MinMemoryBytes {
		errs = append(errs, fmt.Errorf("memory_bytes: %d is below Docker's minimum of 6MiB: use e.g. 256m, or 0 for no limit", s.MemoryBytes))
	}
	if s.NanoCPUs != 0 && s.NanoCPUs < MinNanoCPUs {
		errs = append(errs, fmt.Errorf("nano_cpus: %d is below Docker's minimum of 0.01 CPU (10000000): use e.g. 0.5 CPU, or 0 for no limit", s.NanoCPUs))
	}
	return errs
}

// validateRuntime checks labels, healthcheck, stop signal, pull policy and
// logging.
func (s RunSpec) validateRuntime() []error {
	var errs []error
	for _, k := range sortedKeys(s.Labels) {
		switch {
		case !labelKeyRE.MatchString(k):
			errs = append(errs, fmt.Errorf("labels: key %q: use a non-empty KEY without '=' or NUL", k))
		case strings.HasPrefix(k, ReservedLabelPrefix):
			errs = append(errs, fmt.Errorf("labels: key %q uses the reserved %q prefix: choose another key, e.g. com.example.%s", k, ReservedLabelPrefix, strings.TrimPrefix(k, ReservedLabelPrefix)))
		}
		if strings.ContainsRune(s.Labels[k], 0) {
			errs = append(errs, fmt.Errorf("labels: value of %q contains a NUL byte", k))
		}
	}
	if h := s.Healthcheck; h != nil {
		if h.Disable && (h.Command != "" || h.Interval != 0 || h.Timeout != 0 || h.Retries != 0) {
			errs = append(errs, fmt.Errorf("healthcheck: disable is set together with a command, timing or retries: either disable the check or override it"))
		}
		if strings.ContainsRune(h.Command, 0) {
			errs = append(errs, fmt.Errorf("healthcheck.command: contains a NUL byte"))
		}
		if h.Interval != 0 && h.Interval < time.Millisecond {
			errs = append(errs, fmt.Errorf("healthcheck.interval: %s: use at least 1ms, or 0 for the image's", h.Interval))
		}
		if h.Timeout != 0 && h.Timeout < time.Millisecond {
			errs = append(errs, fmt.Errorf("healthcheck.timeout: %s: use at least 1ms, or 0 for the image's", h.Timeout))
		}
		if h.Retries < 0 {
			errs = append(errs, fmt.Errorf("healthcheck.retries: %d is negative: use 0 for the image's", h.Retries))
		}
	}
	if s.StopSignal != "" && !stopSignalRE.MatchString(s.StopSignal) {
		errs = append(errs, fmt.Errorf("stop_signal: %q: use a signal name such as SIGTERM or SIGINT, or its number", s.StopSignal))
	}
	switch s.PullPolicy {
	case "", PullAlways, PullIfNotPresent:
	default:
		errs = append(errs, fmt.Errorf("pull_policy: %q: use always or if-not-present", s.PullPolicy))
	}
	if s.Log.Driver != "" && !logDriverRE.MatchString(s.Log.Driver) {
		errs = append(errs, fmt.Errorf("log.driver: %q: use a logging driver name such as json-file, local or syslog", s.Log.Driver))
	}
	for _, k := range sortedKeys(s.Log.Options) {
		if !labelKeyRE.MatchString(k) || strings.ContainsRune(s.Log.Options[k], 0) {
			errs = append(errs, fmt.Errorf("log.options: %q: use a non-empty KEY without '=' or NUL, and a value without NUL", k))
		}
	}
	return errs
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ValidateName checks an application or environment name; field names the
// flag or field so the error tells the user where to look.
func ValidateName(field, name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%s: invalid name %q: use 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit", field, name)
	}
	return nil
}
