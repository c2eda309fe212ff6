package docker

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/strslice"
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

func TestContainerConfigFields(t *testing.T) {
	t.Parallel()
	const ref = "reg.example.com/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	base := Task{ID: "t1", DeploymentID: "d1", ReleaseID: "r1", ReleaseVersion: "1", Application: "web"}
	type both struct {
		cfg  *container.Config
		host *container.HostConfig
	}
	tests := []struct {
		name  string
		spec  spec.RunSpec
		check func(both) any // returns the part under test
		want  any
	}{
		{"entrypoint", spec.RunSpec{Entrypoint: []string{"/bin/sh", "-c"}},
			func(b both) any { return b.cfg.Entrypoint }, strslice.StrSlice{"/bin/sh", "-c"}},
		{"no entrypoint keeps the image's", spec.RunSpec{},
			func(b both) any { return b.cfg.Entrypoint }, strslice.StrSlice(nil)},
		{"working dir", spec.RunSpec{WorkingDir: "/srv"},
			func(b both) any { return b.cfg.WorkingDir }, "/srv"},
		{"user", spec.RunSpec{User: "1000:1000"},
			func(b both) any { return b.cfg.User }, "1000:1000"},
		{"volumes", spec.RunSpec{Volumes: []spec.Volume{{Source: "data", Target: "/data"}, {Source: "/etc/app", Target: "/conf", ReadOnly: true}}},
			func(b both) any { return b.host.Mounts }, []mount.Mount{
				{Type: mount.TypeVolume, Source: "data", Target: "/data"},
				{Type: mount.TypeBind, Source: "/etc/app", Target: "/conf", ReadOnly: true},
			}},
		{"first network is the network mode", spec.RunSpec{Networks: []spec.Network{{Name: "back"}, {Name: "front"}}},
			func(b both) any { return b.host.NetworkMode }, container.NetworkMode("back")},
		{"no network keeps the default", spec.RunSpec{},
			func(b both) any { return b.host.NetworkMode }, container.NetworkMode("")},
		{"restart max retries", spec.RunSpec{RestartPolicy: "on-failure", RestartMaxRetries: 4},
			func(b both) any { return b.host.RestartPolicy }, container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 4}},
		{"labels beside the agent's", spec.RunSpec{Labels: map[string]string{"com.example.team": "web"}},
			func(b both) any { return [2]string{b.cfg.Labels["com.example.team"], b.cfg.Labels[LabelApp]} }, [2]string{"web", "web"}},
		{"memory and CPUs", spec.RunSpec{MemoryBytes: 256 << 20, NanoCPUs: 500_000_000},
			func(b both) any { return b.host.Resources }, container.Resources{Memory: 256 << 20, NanoCPUs: 500_000_000}},
		{"healthcheck override", spec.RunSpec{Healthcheck: &spec.Healthcheck{Command: "curl -f localhost", Interval: time.Second, Timeout: 2 * time.Second, Retries: 3}},
			func(b both) any { return b.cfg.Healthcheck }, &container.HealthConfig{Test: []string{"CMD-SHELL", "curl -f localhost"}, Interval: time.Second, Timeout: 2 * time.Second, Retries: 3}},
		{"healthcheck timings only keep the image's test", spec.RunSpec{Healthcheck: &spec.Healthcheck{Retries: 2}},
			func(b both) any { return b.cfg.Healthcheck }, &container.HealthConfig{Retries: 2}},
		{"healthcheck disabled", spec.RunSpec{Healthcheck: &spec.Healthcheck{Disable: true}},
			func(b both) any { return b.cfg.Healthcheck }, &container.HealthConfig{Test: []string{"NONE"}}},
		{"no healthcheck keeps the image's", spec.RunSpec{},
			func(b both) any { return b.cfg.Healthcheck }, (*container.HealthConfig)(nil)},
		{"stop signal", spec.RunSpec{StopSignal: "SIGINT"},
			func(b both) any { return b.cfg.StopSignal }, "SIGINT"},
		{"log driver and options", spec.RunSpec{Log: spec.LogConfig{Driver: "local", Options: map[string]string{"max-size": "10m"}}},
			func(b both) any { return b.host.LogConfig }, container.LogConfig{Type: "local", Config: map[string]string{"max-size": "10m"}}},
		{"log options with the daemon's driver", spec.RunSpec{Log: spec.LogConfig{Options: map[string]string{"max-file": "3"}}},
			func(b both) any { return b.host.LogConfig }, container.LogConfig{Config: map[string]string{"max-file": "3"}}},
		{"extra hosts", spec.RunSpec{ExtraHosts: []spec.ExtraHost{{Name: "db", IP: "10.0.0.5"}, {Name: "v6", IP: "::1"}}},
			func(b both) any { return b.host.ExtraHosts }, []string{"db:10.0.0.5", "v6:::1"}},
		{"pull policy does not reach the container", spec.RunSpec{PullPolicy: "always"},
			func(b both) any { return b.cfg.Image }, ref},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.spec.Validate(); err != nil {
				t.Fatalf("test spec is invalid: %v", err)
			}
			task := base
			task.Spec = tt.spec
			cfg, host := ContainerConfig(task, ref)
			if got := tt.check(both{cfg, host}); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestNetworks(t *testing.T) {
	t.Parallel()
	task := Task{Spec: spec.RunSpec{Networks: []spec.Network{{Name: "back", Aliases: []string{"api", "api2"}}, {Name: "front"}}}}
	got := Networks(task)
	want := []NetworkAttachment{
		{Name: "back", Endpoint: &network.EndpointSettings{Aliases: []string{"api", "api2"}}},
		{Name: "front", Endpoint: &network.EndpointSettings{}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Networks = %+v, want %+v", got, want)
	}
	got[0].Endpoint.Aliases[0] = "changed"
	if task.Spec.Networks[0].Aliases[0] != "api" {
		t.Errorf("Networks shares the aliases with the task")
	}
	if Networks(Task{}) != nil {
		t.Errorf("Networks of a task without networks is not nil")
	}
}

func TestContainerConfigDoesNotAliasNewFields(t *testing.T) {
	t.Parallel()
	task := Task{Application: "web", Spec: spec.RunSpec{
		Entrypoint: []string{"a"},
		Log:        spec.LogConfig{Options: map[string]string{"k": "v"}},
	}}
	cfg, host := ContainerConfig(task, "img")
	cfg.Entrypoint[0] = "changed"
	host.LogConfig.Config["k"] = "changed"
	if task.Spec.Entrypoint[0] != "a" || task.Spec.Log.Options["k"] != "v" {
		t.Errorf("ContainerConfig shares the entrypoint or log options with the task")
	}
}

// FuzzRunSpecValidate builds a run spec from fuzz inputs, through the CLI
// parsers where they accept an input and as raw fields where they do not.
// Validate must not panic, and a spec it accepts must convert to Docker
// create options without panic.
func FuzzRunSpecValidate(f *testing.F) {
	f.Add("/bin/app", "/srv", "1000:1000", "data:/data", "net:a,b", "k=v", "256m", "0.5", "curl -f x", "SIGTERM", "always", "json-file", "max-size=1m", "db:10.0.0.1", int64(4), int64(1e9))
	f.Add("", "rel", "a b", "/x:/", "bridge", "tentacle.x=y", "1", "-1", "", "sigkill", "never", "", "=", ":", int64(-1), int64(-5))
	f.Fuzz(func(t *testing.T, entry, wd, user, vol, netw, label, mem, cpus, health, sig, pull, logDriver, logOpt, host string, retries, n int64) {
		s := spec.RunSpec{
			WorkingDir: wd, User: user, StopSignal: sig, PullPolicy: pull,
			RestartMaxRetries: int(retries % 1000), Log: spec.LogConfig{Driver: logDriver},
		}
		if retries%2 == 0 {
			s.RestartPolicy = "on-failure"
		}
		s.Entrypoint = strings.Fields(entry)
		if v, err := spec.ParseVolume(vol); err == nil {
			s.Volumes = []spec.Volume{v, {Source: vol, Target: "/fuzz"}}
		} else {
			src, dst, _ := strings.Cut(vol, ":")
			s.Volumes = []spec.Volume{{Source: src, Target: dst}}
		}
		if nw, err := spec.ParseNetwork(netw); err == nil {
			s.Networks = []spec.Network{nw}
		} else {
			s.Networks = []spec.Network{{Name: netw, Aliases: strings.Split(netw, ",")}}
		}
		if k, v, err := spec.ParseKeyValue(label); err == nil {
			s.Labels = map[string]string{k: v}
		} else {
			s.Labels = map[string]string{label: label}
		}
		if k, v, err := spec.ParseKeyValue(logOpt); err == nil {
			s.Log.Options = map[string]string{k: v}
		}
		if h, err := spec.ParseExtraHost(host); err == nil {
			s.ExtraHosts = []spec.ExtraHost{h}
		} else {
			name, ip, _ := strings.Cut(host, ":")
			s.ExtraHosts = []spec.ExtraHost{{Name: name, IP: ip}}
		}
		if s.MemoryBytes, _ = spec.ParseMemory(mem); s.MemoryBytes == 0 {
			s.MemoryBytes = n
		}
		if s.NanoCPUs, _ = spec.ParseCPUs(cpus); s.NanoCPUs == 0 {
			s.NanoCPUs = -n
		}
		d := time.Duration(n)
		switch n % 3 {
		case 0:
			s.Healthcheck = &spec.Healthcheck{Command: health, Interval: d, Timeout: d / 2, Retries: int(retries % 100)}
		case 1:
			s.Healthcheck = &spec.Healthcheck{Disable: true, Command: health}
		}
		if err := s.Validate(); err != nil {
			return
		}
		task := Task{ID: "t", Application: "app", Spec: s}
		cfg, hostCfg := ContainerConfig(task, "img")
		if cfg == nil || hostCfg == nil {
			t.Fatal("ContainerConfig returned nil for a valid spec")
		}
		if got := len(Networks(task)); got != len(s.Networks) {
			t.Fatalf("Networks gave %d attachments for %d networks", got, len(s.Networks))
		}
		for k := range s.Labels {
			if strings.HasPrefix(k, "tentacle.") {
				t.Fatalf("valid spec has reserved label %q", k)
			}
		}
	})
}
