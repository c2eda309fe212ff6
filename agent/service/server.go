package service

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/tentacle-deploy/tentacle/agent"
)

// Server says which server the agent talks to: the config's server when it
// sets one (as agent.New does), else the one recorded at enrollment.
// cfgErr is the error loading the config, if any.
func Server(cfg agent.Config, cfgErr error) string {
	if cfgErr != nil {
		return describeServer(cfg, agent.Identity{}, cfgErr)
	}
	id, err := agent.ReadEnrollment(cfg.DataDir)
	return describeServer(cfg, id, err)
}

func describeServer(cfg agent.Config, id agent.Identity, err error) string {
	switch {
	case errors.Is(err, fs.ErrPermission):
		// The data dir is 0700 root: status works without root, this line does not.
		return fmt.Sprintf("unknown (run as root to read it: %v)", err)
	case errors.Is(err, agent.ErrNotEnrolled):
		if cfg.Server != "" {
			return cfg.Server + " (from the config; not enrolled)"
		}
		return "not enrolled"
	case err != nil:
		return fmt.Sprintf("unknown (%v)", err)
	case cfg.Server != "" && cfg.Server != id.Server:
		return fmt.Sprintf("%s (from the config; enrolled with %s)", cfg.Server, id.Server)
	default:
		return id.Server
	}
}
