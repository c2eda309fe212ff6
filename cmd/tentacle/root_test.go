package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestBadMetricsAddrFlagNamesTheFlag: the agent refuses to start, before
// it touches anything, with an error naming --metrics-addr.
func TestBadMetricsAddrFlagNamesTheFlag(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(cfg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	root := newRootCommand()
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	root.SetArgs([]string{"run", "--config", cfg, "--data-dir", t.TempDir(), "--metrics-addr", "9480"})
	err := root.Execute()
	if want := `--metrics-addr: "9480" must be HOST:PORT or :PORT`; err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}
