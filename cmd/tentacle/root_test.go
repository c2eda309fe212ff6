package main

import (
	"io"
	"os"
	"testing"
)

// TestBadMetricsAddrFlagNamesTheFlag: the agent refuses to start, before
// it touches anything, with an error naming --metrics-addr.
func TestBadMetricsAddrFlagNamesTheFlag(t *testing.T) {
	t.Parallel()
	root := newRootCommand()
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	// An empty config file: every setting at its default.
	root.SetArgs([]string{"run", "--config", os.DevNull, "--data-dir", t.TempDir(), "--metrics-addr", "9480"})
	err := root.Execute()
	if want := `--metrics-addr: "9480" must be HOST:PORT or :PORT`; err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}
