package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad flags are refused before anything starts, naming the flag and the fix.
func TestBadFlagsNameTheFlag(t *testing.T) {
	bin := t.TempDir()
	for _, name := range []string{"tentacle-server", "tentacle", "tentaclectl"} {
		if err := os.WriteFile(filepath.Join(bin, name), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-o", "yaml"}, `-o "yaml": use table or json`},
		{[]string{"--scenarios", "nope"}, `--scenarios: unknown scenario "nope" (tentacle-bench --list shows them)`},
		{[]string{"--agents", "0"}, "--agents: 0: every fleet size must be at least 1"},
		{[]string{"--agents", "many"}, `invalid argument "many" for "--agents"`},
		{[]string{"--bin-dir", filepath.Join(bin, "missing")}, "(make build puts the binaries in ./bin)"},
	} {
		cmd := newRootCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		args := c.args
		if !strings.HasPrefix(strings.Join(args, " "), "--bin-dir") {
			args = append(args, "--bin-dir", bin)
		}
		cmd.SetArgs(args)
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want it to contain %q", c.args, err, c.want)
		}
	}
}
