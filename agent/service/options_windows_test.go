//go:build windows

package service

import (
	"reflect"
	"testing"

	"github.com/docker/docker/client"
)

func TestPlatformOptionsWindows(t *testing.T) {
	t.Parallel()
	got, err := platformOptions(Spec{Executable: `C:\Program Files\Tentacle\tentacle.exe`, ConfigPath: `C:\ProgramData\Tentacle\agent.yaml`})
	if err != nil || !reflect.DeepEqual(got, windowsOptions()) {
		t.Errorf("platformOptions() = %#v, %v", got, err)
	}
}

func TestDefaultDockerHostWindows(t *testing.T) {
	t.Parallel()
	if client.DefaultDockerHost != "npipe:////./pipe/docker_engine" {
		t.Errorf("client.DefaultDockerHost = %q", client.DefaultDockerHost)
	}
}
