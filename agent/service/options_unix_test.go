//go:build !windows

package service

import "testing"

func TestPlatformOptionsUnix(t *testing.T) {
	t.Parallel()
	got, err := platformOptions(Spec{Executable: "/usr/local/bin/tentacle", ConfigPath: "/etc/tentacle/agent.yaml", DataDir: "/var/lib/tentacle"})
	if err != nil || got["SystemdScript"] != wantUnit {
		t.Errorf("platformOptions() = %#v, %v", got, err)
	}
}
