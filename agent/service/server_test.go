package service

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"testing"

	"github.com/tentacle-deploy/tentacle/agent"
)

func TestDescribeServer(t *testing.T) {
	t.Parallel()
	enrolled := agent.Identity{Server: "tentacle.example.com:8443"}
	notEnrolled := fmt.Errorf("data dir /var/lib/tentacle: %w", agent.ErrNotEnrolled)
	denied := &fs.PathError{Op: "open", Path: "/var/lib/tentacle/agent.crt.next", Err: fs.ErrPermission}
	for _, tc := range []struct {
		name string
		cfg  agent.Config
		id   agent.Identity
		err  error
		want string
	}{
		{"enrolled", agent.Config{}, enrolled, nil, "tentacle.example.com:8443"},
		{"config overrides", agent.Config{Server: "other:8443"}, enrolled, nil, "other:8443 (from the config; enrolled with tentacle.example.com:8443)"},
		{"config same", agent.Config{Server: "tentacle.example.com:8443"}, enrolled, nil, "tentacle.example.com:8443"},
		{"not enrolled", agent.Config{}, agent.Identity{}, notEnrolled, "not enrolled"},
		{"not enrolled, config server", agent.Config{Server: "other:8443"}, agent.Identity{}, notEnrolled, "other:8443 (from the config; not enrolled)"},
		{"not root", agent.Config{}, agent.Identity{}, denied, "unknown (run as root to read it: open /var/lib/tentacle/agent.crt.next: permission denied)"},
		{"bad config", agent.Config{}, agent.Identity{}, errors.New("config /etc/tentacle/agent.yaml: line 3: unknown field"), "unknown (config /etc/tentacle/agent.yaml: line 3: unknown field)"},
	} {
		if got := describeServer(tc.cfg, tc.id, tc.err); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestServerNotEnrolled(t *testing.T) {
	t.Parallel()
	if got := Server(agent.Config{DataDir: t.TempDir()}, nil); got != "not enrolled" {
		t.Errorf("Server() = %q, want not enrolled", got)
	}
	if got := Server(agent.Config{}, os.ErrPermission); got != "unknown (run as root to read it: permission denied)" {
		t.Errorf("Server() = %q", got)
	}
}
