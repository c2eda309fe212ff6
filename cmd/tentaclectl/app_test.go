package main

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

func TestAppCreateContainerFlags(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	r := h.run(t, "app", "create", "web", "--image", "team/web", "--roles", "web,eu",
		"--entrypoint", "/bin/web", "--workdir", "/srv", "--user", "1000:1000",
		"--volume", "data:/data", "--volume", "/etc/web:/conf:ro",
		"--network", "backend:api,api2", "--network", "front",
		"--restart", "on-failure", "--restart-max-retries", "5",
		"--label", "com.example.team=platform", "--memory", "256m", "--cpus", "0.5",
		"--health-cmd", "curl -f localhost", "--health-interval", "5s", "--health-timeout", "2s", "--health-retries", "3",
		"--stop-signal", "SIGINT", "--pull", "always",
		"--log-driver", "local", "--log-opt", "max-size=10m",
		"--add-host", "db:10.0.0.5", "--add-host", "v6:::1",
		"--strategy", "start-first", "--health-gate-timeout", "2m")
	wantCode(t, r, 0)
	wantRequest(t, h.fake, &tentaclev1.CreateApplicationRequest{
		Name: "web", ImageRepository: "docker.io/team/web", Roles: []string{"web", "eu"},
		RunSpec: &tentaclev1.RunSpec{
			ReadyAfter: durationpb.New(10 * time.Second), StopTimeout: durationpb.New(10 * time.Second),
			RestartPolicy: "on-failure", RestartMaxRetries: 5,
			Entrypoint: []string{"/bin/web"}, WorkingDir: "/srv", User: "1000:1000",
			Volumes:     []*tentaclev1.VolumeMount{{Source: "data", Target: "/data"}, {Source: "/etc/web", Target: "/conf", ReadOnly: true}},
			Networks:    []*tentaclev1.NetworkAttachment{{Name: "backend", Aliases: []string{"api", "api2"}}, {Name: "front"}},
			Labels:      map[string]string{"com.example.team": "platform"},
			MemoryBytes: 256 << 20, NanoCpus: 500_000_000,
			Healthcheck: &tentaclev1.Healthcheck{Command: "curl -f localhost", Interval: durationpb.New(5 * time.Second), Timeout: durationpb.New(2 * time.Second), Retries: 3},
			StopSignal:  "SIGINT", PullPolicy: "always",
			Log:        &tentaclev1.LogConfig{Driver: "local", Options: map[string]string{"max-size": "10m"}},
			ExtraHosts: []*tentaclev1.ExtraHost{{Hostname: "db", Ip: "10.0.0.5"}, {Hostname: "v6", Ip: "::1"}},
			Strategy:   "start-first", HealthTimeout: durationpb.New(2 * time.Minute),
		},
	})
}

func TestAppCreateNoHealthcheck(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	wantCode(t, h.run(t, "app", "create", "web", "--image", "team/web", "--no-healthcheck"), 0)
	wantRequest(t, h.fake, &tentaclev1.CreateApplicationRequest{
		Name: "web", ImageRepository: "docker.io/team/web",
		RunSpec: &tentaclev1.RunSpec{
			ReadyAfter: durationpb.New(10 * time.Second), StopTimeout: durationpb.New(10 * time.Second),
			RestartPolicy: "unless-stopped", Healthcheck: &tentaclev1.Healthcheck{Disable: true},
		},
	})
}

// Each container flag's bad value is reported against the flag, before
// any call.
func TestAppCreateBadContainerFlags(t *testing.T) {
	t.Parallel()
	app := []string{"app", "create", "web", "--image", "team/web"}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--workdir", "srv"}, `--workdir: "srv": use an absolute path, e.g. /app`},
		{[]string{"--user", "a b"}, `--user: "a b": use NAME or UID, optionally followed by :GROUP or :GID, e.g. 1000:1000`},
		{[]string{"--volume", "data"}, `--volume "data": use SRC:DST[:ro], SRC a volume name or an absolute host path, e.g. data:/var/lib/app or /srv/conf:/etc/app:ro`},
		{[]string{"--volume", "data:rel"}, `--volume "data:rel": target "rel": use an absolute path in the container, e.g. /data`},
		{[]string{"--network", "host"}, `--network "host": "host" is one of Docker's predefined networks: use a user-defined network name`},
		{[]string{"--restart-max-retries", "3"}, `--restart-max-retries: only applies to restart_policy on-failure: set the policy to on-failure or leave out the retries`},
		{[]string{"--label", "tentacle.app=x"}, `--label: key "tentacle.app" uses the reserved "tentacle." prefix: choose another key, e.g. com.example.app`},
		{[]string{"--label", "novalue"}, `--label "novalue": use KEY=VALUE (KEY= for an empty value)`},
		{[]string{"--label", "a=1", "--label", "a=2"}, `--label "a=2": key "a" is set twice`},
		{[]string{"--memory", "lots"}, `--memory: "lots" is not a size: use a number with b, k, m or g, e.g. 256m`},
		{[]string{"--memory", "1k"}, `--memory: "1k" is below Docker's minimum of 6MiB: use e.g. 256m, or 0 for no limit`},
		{[]string{"--cpus", "half"}, `--cpus: "half" is not a number of CPUs: use e.g. 0.5 or 2, at most 9 decimals`},
		{[]string{"--cpus", "0.001"}, `--cpus: "0.001" is below Docker's minimum of 0.01 CPU: use e.g. 0.5, or 0 for no limit`},
		{[]string{"--no-healthcheck", "--health-cmd", "true"}, `--no-healthcheck: disable is set together with a command, timing or retries: either disable the check or override it`},
		{[]string{"--strategy", "blue-green"}, `--strategy: "blue-green": use recreate or start-first`},
		{[]string{"--strategy", "start-first", "--port", "8080:80"}, `--strategy: start-first runs the new container beside the old one, so fixed host port 8080/tcp would clash; publish the port without a host port, or use strategy recreate`},
		{[]string{"--health-gate-timeout", "5s"}, `--health-gate-timeout: 5s is shorter than ready_after 10s, so the health gate could never pass: raise health_timeout or lower ready_after`},
		{[]string{"--health-gate-timeout", "3h"}, `--health-gate-timeout: 3h0m0s out of range 0-2h0m0s (0 derives it from the healthcheck)`},
		{[]string{"--health-retries", "-1"}, `--health-retries: -1 is negative: use 0 for the image's`},
		{[]string{"--stop-signal", "term"}, `--stop-signal: "term": use a signal name such as SIGTERM or SIGINT, or its number`},
		{[]string{"--pull", "never"}, `--pull: "never": use always or if-not-present`},
		{[]string{"--log-driver", "a b"}, `--log-driver: "a b": use a logging driver name such as json-file, local or syslog`},
		{[]string{"--add-host", "db"}, `--add-host "db": missing ':': use NAME:IP, e.g. db:10.0.0.5`},
		{[]string{"--roles", "Web"}, `--roles: invalid name "Web": use 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit`},
	}
	h := newHarness(t, &fakeAdmin{})
	for _, tt := range tests {
		args := append(append([]string(nil), app...), tt.args...)
		r := h.run(t, args...)
		if r.code != 2 {
			t.Errorf("%q: exit code %d, want 2", tt.args, r.code)
		}
		first, _, _ := strings.Cut(r.stderr, "\n")
		if want := "tentaclectl: " + tt.want; first != want {
			t.Errorf("%q: stderr\n got: %s\nwant: %s", tt.args, first, want)
		}
	}
	if n := h.fake.count(); n != 0 {
		t.Errorf("server got %d requests for bad input", n)
	}
}
