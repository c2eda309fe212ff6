package service

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/docker/docker/client"
)

func TestCheckSystemdPaths(t *testing.T) {
	t.Parallel()
	ok := []NamedPath{{"the tentacle binary", "/usr/local/bin/tentacle"}, {"the config", "/etc/tentacle/agent.yaml"},
		{"the data dir", "/var/lib/tentacle"}, {"docker_config", ""}, {"the config", "/homework/agent.yaml"}}
	if err := CheckSystemdPaths(ok); err != nil {
		t.Errorf("CheckSystemdPaths(ok) = %v", err)
	}
	err := CheckSystemdPaths([]NamedPath{{"the tentacle binary", "/tmp/build/tentacle"}})
	want := "the tentacle binary /tmp/build/tentacle is under /tmp, which the service cannot see (ProtectHome=yes, PrivateTmp=yes): move it, e.g. the binary to /usr/local/bin and the config to /etc/tentacle"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
	if err := CheckSystemdPaths([]NamedPath{{"docker_config", "/root/.docker/config.json"}}); err == nil {
		t.Error("accepted /root/.docker/config.json")
	}
}

func TestOpenLogFileRotates(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "data", LogFileName)
	for i, want := range []string{"first\n", "first\nsecond\n", "third\n"} {
		f, err := openLogFile(path, 10)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString([]string{"first\n", "second\n", "third\n"}[i])
		f.Close()
		if got, _ := os.ReadFile(path); string(got) != want {
			t.Errorf("after write %d: %q, want %q", i, got, want)
		}
	}
	if got, _ := os.ReadFile(path + ".1"); string(got) != "first\nsecond\n" {
		t.Errorf("rotated file %q", got)
	}
}

// The agent sets no Docker host of its own: with DOCKER_HOST and the
// config's docker_host unset, the client's OS default applies, which on
// Windows is the docker_engine named pipe.
func TestDefaultDockerHost(t *testing.T) {
	t.Setenv("DOCKER_HOST", "")
	cli, err := client.NewClientWithOpts(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"windows": "npipe:////./pipe/docker_engine"}[runtime.GOOS]
	if want == "" {
		want = "unix:///var/run/docker.sock"
	}
	if got := cli.DaemonHost(); got != want {
		t.Errorf("DaemonHost() = %q, want %q", got, want)
	}
	if !strings.HasPrefix(client.DefaultDockerHost, strings.SplitN(want, ":", 2)[0]) {
		t.Errorf("client.DefaultDockerHost = %q", client.DefaultDockerHost)
	}
}
