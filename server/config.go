package server

import (
	"fmt"
	"time"
)

// Defaults and bounds of the server's reliability settings; docs/RELIABILITY.md
// explains each.
const (
	defaultHeartbeat          = 10 * time.Second
	defaultAgentTimeout       = 45 * time.Second
	defaultMaxHandshakes      = 64
	defaultDeploymentDeadline = time.Hour
	// A deadline bounds how long tasks wait for their targets: under a
	// minute is a typo more often than a plan for a server-wide default, and
	// past a week a target that never comes back holds the deployment open
	// for no use.
	minDefaultDeadline = time.Minute
	maxDeadline        = 7 * 24 * time.Hour
)

// HealthThresholds are the limits past which a connected target whose
// engine answers counts as degraded (docs/OPERATIONS.md). Zero fields take
// the defaults.
type HealthThresholds struct {
	// DiskFreePercent: degraded when the filesystem of Docker's data root
	// has less free space than this percentage (default 10).
	DiskFreePercent float64
	// ClockSkew: degraded when the agent's clock is off by more than this
	// (default 30s).
	ClockSkew time.Duration
	// Restarts: degraded when a managed container has restarted more than
	// this many times since its deployment created it (default 3).
	Restarts int
}

const (
	defaultHealthDiskFreePercent = 10
	defaultHealthClockSkew       = 30 * time.Second
	defaultHealthRestarts        = 3
)

// applyDefaults fills the zero fields and refuses values the server cannot
// run with; errors name the flag of `tentacle-server serve`.
func (c *Config) applyDefaults() error {
	if c.HeartbeatInterval < 0 {
		return fmt.Errorf("--heartbeat: %s is negative: use a positive interval such as %s", c.HeartbeatInterval, defaultHeartbeat)
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = defaultHeartbeat
	}
	if c.AgentTimeout == 0 {
		c.AgentTimeout = max(defaultAgentTimeout, 3*c.HeartbeatInterval)
	}
	if c.AgentTimeout < 3*c.HeartbeatInterval {
		return fmt.Errorf("--agent-timeout: %s is under 3 heartbeat intervals (--heartbeat %s), so a healthy agent that misses one heartbeat would be dropped: use at least %s",
			c.AgentTimeout, c.HeartbeatInterval, 3*c.HeartbeatInterval)
	}
	if c.MaxHandshakes < 0 {
		return fmt.Errorf("--max-handshakes: %d is negative: use at least 1 (default %d)", c.MaxHandshakes, defaultMaxHandshakes)
	}
	if c.MaxHandshakes == 0 {
		c.MaxHandshakes = defaultMaxHandshakes
	}
	if c.DeploymentDeadline == 0 {
		c.DeploymentDeadline = defaultDeploymentDeadline
	}
	if c.DeploymentDeadline < minDefaultDeadline || c.DeploymentDeadline > maxDeadline {
		return fmt.Errorf("--deployment-deadline: %s out of range: use 1m to 168h (7 days)", c.DeploymentDeadline)
	}
	return c.Health.applyDefaults()
}

// applyDefaults fills the zero thresholds; errors name the flag.
func (h *HealthThresholds) applyDefaults() error {
	if h.DiskFreePercent < 0 || h.DiskFreePercent >= 100 {
		return fmt.Errorf("--health-disk-free: %g is not a percentage below 100: use e.g. %d (degraded under %d%% free)", h.DiskFreePercent, defaultHealthDiskFreePercent, defaultHealthDiskFreePercent)
	}
	if h.DiskFreePercent == 0 {
		h.DiskFreePercent = defaultHealthDiskFreePercent
	}
	if h.ClockSkew < 0 {
		return fmt.Errorf("--health-clock-skew: %s is negative: use a positive duration such as %s", h.ClockSkew, defaultHealthClockSkew)
	}
	if h.ClockSkew == 0 {
		h.ClockSkew = defaultHealthClockSkew
	}
	if h.Restarts < 0 {
		return fmt.Errorf("--health-restarts: %d is negative: use a count such as %d (degraded when a container restarted more often)", h.Restarts, defaultHealthRestarts)
	}
	if h.Restarts == 0 {
		h.Restarts = defaultHealthRestarts
	}
	return nil
}
