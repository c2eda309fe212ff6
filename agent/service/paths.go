package service

import (
	"fmt"
	"path/filepath"
	"strings"
)

// hiddenBySystemdUnit are the trees our unit hides from the agent:
// ProtectHome=yes and PrivateTmp=yes.
var hiddenBySystemdUnit = []string{"/home", "/root", "/run/user", "/tmp", "/var/tmp"}

// CheckSystemdPaths rejects paths the service could not reach under our
// unit's hardening, so install fails now instead of the service at start.
// what names each path for the message ("the tentacle binary", …).
func CheckSystemdPaths(paths []NamedPath) error {
	for _, p := range paths {
		if p.Path == "" {
			continue
		}
		clean := filepath.Clean(p.Path)
		for _, dir := range hiddenBySystemdUnit {
			if clean == dir || strings.HasPrefix(clean, dir+"/") {
				return fmt.Errorf("%s %s is under %s, which the service cannot see (ProtectHome=yes, PrivateTmp=yes): move it, e.g. the binary to /usr/local/bin and the config to /etc/tentacle",
					p.What, p.Path, dir)
			}
		}
	}
	return nil
}

// NamedPath is a path and what it is, for CheckSystemdPaths' messages.
type NamedPath struct{ What, Path string }
