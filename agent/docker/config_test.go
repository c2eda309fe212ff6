package docker

import (
	"reflect"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"

	"github.com/tentacle-deploy/tentacle/internal/spec"
)

func TestContainerConfig(t *testing.T) {
	t.Parallel()
	const ref = "reg.example.com:5000/team/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	base := Task{
		ID: "t1", DeploymentID: "d1", ReleaseID: "r1", ReleaseVersion: "1.4.2", Application: "web",
		Repository: "reg.example.com:5000/team/web", Tag: "1.4.2",
	}
	labels := map[string]string{
		"tentacle.managed": "true", "tentacle.app": "web", "tentacle.release": "r1",
		"tentacle.release.version": "1.4.2", "tentacle.deployment": "d1", "tentacle.task": "t1",
	}
	intp := func(n int) *int { return &n }
	tests := []struct {
		name     string
		spec     spec.RunSpec
		wantCfg  container.Config
		wantHost container.HostConfig
	}{
		{
			name:     "defaults",
			spec:     spec.RunSpec{},
			wantCfg:  container.Config{Image: ref, Labels: labels, StopTimeout: intp(10)},
			wantHost: container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "unless-stopped"}},
		},
		{
			name: "env in order, command, restart policy, stop timeout rounded up",
			spec: spec.RunSpec{
				Env:           []spec.EnvVar{{Name: "B", Value: "2"}, {Name: "A", Value: "x=y"}, {Name: "EMPTY", Value: ""}},
				Command:       []string{"serve", "--port", "8080"},
				RestartPolicy: "on-failure",
				StopTimeout:   1500 * time.Millisecond,
			},
			wantCfg: container.Config{
				Image: ref, Labels: labels, StopTimeout: intp(2),
				Env: []string{"B=2", "A=x=y", "EMPTY="},
				Cmd: []string{"serve", "--port", "8080"},
			},
			wantHost: container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "on-failure"}},
		},
		{
			name: "ports",
			spec: spec.RunSpec{
				RestartPolicy: "no",
				Ports: []spec.Port{
					{ContainerPort: 8080, HostPort: 80},
					{ContainerPort: 8080, HostPort: 8080, HostIP: "127.0.0.1"},
					{ContainerPort: 53, HostPort: 5353, Protocol: "udp"},
					{ContainerPort: 9090}, // any free host port
				},
			},
			wantCfg: container.Config{
				Image: ref, Labels: labels, StopTimeout: intp(10),
				ExposedPorts: nat.PortSet{"8080/tcp": {}, "53/udp": {}, "9090/tcp": {}},
			},
			wantHost: container.HostConfig{
				RestartPolicy: container.RestartPolicy{Name: "no"},
				PortBindings: nat.PortMap{
					"8080/tcp": {{HostPort: "80"}, {HostIP: "127.0.0.1", HostPort: "8080"}},
					"53/udp":   {{HostPort: "5353"}},
					"9090/tcp": {{HostPort: ""}},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			task := base
			task.Spec = tt.spec
			cfg, host := ContainerConfig(task, ref)
			if !reflect.DeepEqual(*cfg, tt.wantCfg) {
				t.Errorf("config =\n%+v\nwant\n%+v", *cfg, tt.wantCfg)
			}
			if !reflect.DeepEqual(*host, tt.wantHost) {
				t.Errorf("host config =\n%+v\nwant\n%+v", *host, tt.wantHost)
			}
		})
	}
}

func TestContainerConfigDoesNotAlias(t *testing.T) {
	t.Parallel()
	task := Task{Application: "web", Spec: spec.RunSpec{Command: []string{"a"}, Ports: []spec.Port{{ContainerPort: 1}}}}
	cfg, _ := ContainerConfig(task, "img")
	cfg.Cmd[0] = "changed"
	if task.Spec.Command[0] != "a" {
		t.Errorf("ContainerConfig shares the Command slice with the task")
	}
	if task.Spec.Ports[0].Protocol != "" {
		t.Errorf("ContainerConfig changed the task's ports")
	}
}

func TestHealthLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		hc    container.HealthConfig
		ready time.Duration
		want  time.Duration
	}{
		{container.HealthConfig{Test: []string{"CMD", "x"}}, 10 * time.Second, 4 * time.Minute}, // engine defaults
		{container.HealthConfig{Interval: time.Second, Timeout: time.Second, Retries: 2, StartPeriod: 5 * time.Second}, time.Second, 11 * time.Second},
		{container.HealthConfig{Interval: time.Second, Timeout: time.Second, Retries: 1}, time.Minute, time.Minute},
	}
	for _, tt := range tests {
		if got := healthLimit(&tt.hc, tt.ready); got != tt.want {
			t.Errorf("healthLimit(%+v, %s) = %s, want %s", tt.hc, tt.ready, got, tt.want)
		}
	}
}
