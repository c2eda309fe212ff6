package server

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// TestServerRefusesBadReliabilitySettings: each refusal names the flag and
// the fix, and nothing is created in the data directory.
func TestServerRefusesBadReliabilitySettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{HeartbeatInterval: -time.Second}, "--heartbeat: -1s is negative: use a positive interval such as 10s"},
		{Config{HeartbeatInterval: 10 * time.Second, AgentTimeout: 20 * time.Second},
			"--agent-timeout: 20s is under 3 heartbeat intervals (--heartbeat 10s), so a healthy agent that misses one heartbeat would be dropped: use at least 30s"},
		{Config{MaxHandshakes: -3}, "--max-handshakes: -3 is negative: use at least 1 (default 64)"},
		{Config{DeploymentDeadline: 30 * time.Second}, "--deployment-deadline: 30s out of range: use 1m to 168h (7 days)"},
		{Config{DeploymentDeadline: 8 * 24 * time.Hour}, "--deployment-deadline: 192h0m0s out of range: use 1m to 168h (7 days)"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			cfg := tc.cfg
			cfg.DataDir, cfg.Listen, cfg.Out = filepath.Join(t.TempDir(), "data"), "127.0.0.1:0", io.Discard
			_, err := New(context.Background(), cfg, zaptest.NewLogger(t))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got %v\nwant %s", err, tc.want)
			}
			if _, err := os.Stat(cfg.DataDir); !os.IsNotExist(err) {
				t.Errorf("data dir created for a refused configuration: %v", err)
			}
		})
	}
	// A longer heartbeat moves the default timeout with it.
	cfg := Config{HeartbeatInterval: 30 * time.Second}
	if err := cfg.applyDefaults(); err != nil || cfg.AgentTimeout != 90*time.Second {
		t.Errorf("default agent timeout with a 30s heartbeat: %s, %v; want 1m30s", cfg.AgentTimeout, err)
	}
}
