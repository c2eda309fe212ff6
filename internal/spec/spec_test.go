package spec

import (
	"strings"
	"testing"
	"time"
)

func TestRunSpecValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		spec RunSpec
		want string // "" means valid; several errors are joined by newlines
	}{
		{"empty", RunSpec{}, ""},
		{"full", RunSpec{
			Env:           []EnvVar{{"A", "1"}, {"_b", "x=y"}},
			Command:       []string{"/app", "-v"},
			Ports:         []Port{{ContainerPort: 80, HostPort: 8080}, {ContainerPort: 53, Protocol: "udp", HostIP: "::1"}, {ContainerPort: 81}},
			ReadyAfter:    time.Hour,
			StopTimeout:   10 * time.Minute,
			RestartPolicy: "on-failure",
		}, ""},
		{"same host port on tcp and udp", RunSpec{Ports: []Port{{ContainerPort: 53, HostPort: 53}, {ContainerPort: 53, HostPort: 53, Protocol: "udp"}}}, ""},
		{"random host ports repeat", RunSpec{Ports: []Port{{ContainerPort: 80}, {ContainerPort: 80}}}, ""},
		{"bad env name", RunSpec{Env: []EnvVar{{"1A", "x"}}},
			`env[0]: invalid variable name "1A": use letters, digits and _, not starting with a digit`},
		{"duplicate env", RunSpec{Env: []EnvVar{{"A", "1"}, {"B", "2"}, {"A", "3"}}},
			`env[2]: variable "A" is set twice`},
		{"NUL in env value", RunSpec{Env: []EnvVar{{"A", "x\x00"}}},
			`env[0]: value of "A" contains a NUL byte`},
		{"container port 0", RunSpec{Ports: []Port{{ContainerPort: 0}}},
			"ports[0]: container port 0 out of range 1-65535"},
		{"container port too big", RunSpec{Ports: []Port{{ContainerPort: 65536}}},
			"ports[0]: container port 65536 out of range 1-65535"},
		{"host port too big", RunSpec{Ports: []Port{{ContainerPort: 80, HostPort: 70000}}},
			"ports[0]: host port 70000 out of range 1-65535 (0 picks a free port)"},
		{"protocol", RunSpec{Ports: []Port{{ContainerPort: 80, Protocol: "sctp"}}},
			`ports[0]: protocol "sctp": use tcp or udp`},
		{"host IP", RunSpec{Ports: []Port{{ContainerPort: 80, HostIP: "localhost"}}},
			`ports[0]: host IP "localhost" is not an IP address`},
		{"host port twice", RunSpec{Ports: []Port{{ContainerPort: 80, HostPort: 8080}, {ContainerPort: 81, HostPort: 8080, Protocol: "tcp"}}},
			"ports[1]: host port 8080/tcp is published twice"},
		{"negative ready_after", RunSpec{ReadyAfter: -time.Second},
			"ready_after: -1s out of range 0-1h0m0s"},
		{"ready_after too long", RunSpec{ReadyAfter: 2 * time.Hour},
			"ready_after: 2h0m0s out of range 0-1h0m0s"},
		{"stop_timeout too long", RunSpec{StopTimeout: 11 * time.Minute},
			"stop_timeout: 11m0s out of range 0-10m"},
		{"start-first with random host ports", RunSpec{Strategy: StrategyStartFirst, Ports: []Port{{ContainerPort: 80}, {ContainerPort: 53, Protocol: "udp"}}}, ""},
		{"recreate with a fixed host port", RunSpec{Strategy: StrategyRecreate, Ports: []Port{{ContainerPort: 80, HostPort: 8080}}}, ""},
		{"start-first with a fixed host port", RunSpec{Strategy: StrategyStartFirst, Ports: []Port{{ContainerPort: 80}, {ContainerPort: 80, HostPort: 8080}, {ContainerPort: 53, HostPort: 53, Protocol: "udp"}}},
			"strategy: start-first runs the new container beside the old one, so fixed host port 8080/tcp would clash; publish the port without a host port, or use strategy recreate\n" +
				"strategy: start-first runs the new container beside the old one, so fixed host port 53/udp would clash; publish the port without a host port, or use strategy recreate"},
		{"unknown strategy", RunSpec{Strategy: "blue-green"},
			`strategy: "blue-green": use recreate or start-first`},
		{"health_timeout", RunSpec{HealthTimeout: 5 * time.Minute, ReadyAfter: time.Minute}, ""},
		{"negative health_timeout", RunSpec{HealthTimeout: -time.Second},
			"health_timeout: -1s out of range 0-2h0m0s (0 derives it from the healthcheck)"},
		{"health_timeout too long", RunSpec{HealthTimeout: 3 * time.Hour},
			"health_timeout: 3h0m0s out of range 0-2h0m0s (0 derives it from the healthcheck)"},
		{"health_timeout below the default ready_after", RunSpec{HealthTimeout: 5 * time.Second},
			"health_timeout: 5s is shorter than ready_after 10s, so the health gate could never pass: raise health_timeout or lower ready_after"},
		{"health_timeout below ready_after", RunSpec{HealthTimeout: 5 * time.Second, ReadyAfter: time.Minute},
			"health_timeout: 5s is shorter than ready_after 1m0s, so the health gate could never pass: raise health_timeout or lower ready_after"},
		{"restart policy", RunSpec{RestartPolicy: "sometimes"},
			`restart_policy: "sometimes": use no, always, unless-stopped or on-failure`},
		{"NUL in command", RunSpec{Command: []string{"sh", "-c\x00"}},
			"command[1]: contains a NUL byte"},
		{"every problem at once", RunSpec{
			Env:           []EnvVar{{"", "x"}},
			Ports:         []Port{{ContainerPort: 0, Protocol: "x"}},
			RestartPolicy: "never",
		}, strings.Join([]string{
			`env[0]: invalid variable name "": use letters, digits and _, not starting with a digit`,
			"ports[0]: container port 0 out of range 1-65535",
			`ports[0]: protocol "x": use tcp or udp`,
			`restart_policy: "never": use no, always, unless-stopped or on-failure`,
		}, "\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.spec.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("Validate: no error, want %q", tt.want)
			case tt.want != "" && err.Error() != tt.want:
				t.Fatalf("Validate error\n got: %s\nwant: %s", err, tt.want)
			}
		})
	}
}

func TestWithDefaults(t *testing.T) {
	t.Parallel()
	got := RunSpec{Ports: []Port{{ContainerPort: 80}, {ContainerPort: 53, Protocol: "udp"}}}.WithDefaults()
	if got.ReadyAfter != DefaultReadyAfter || got.StopTimeout != DefaultStopTimeout || got.RestartPolicy != DefaultRestartPolicy {
		t.Errorf("defaults not applied: %+v", got)
	}
	if got.Ports[0].Protocol != "tcp" || got.Ports[1].Protocol != "udp" {
		t.Errorf("protocols = %q, %q; want tcp, udp", got.Ports[0].Protocol, got.Ports[1].Protocol)
	}
}

func TestValidateName(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"prod", "a", "0", "web-1.blue_green", strings.Repeat("a", 63)} {
		if err := ValidateName("--env", ok); err != nil {
			t.Errorf("ValidateName(%q): %v", ok, err)
		}
	}
	const rule = "use 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
	for _, bad := range []string{"", "Prod", "-web", ".web", "_web", "web app", "web/1", strings.Repeat("a", 64), "é"} {
		err := ValidateName("--env", bad)
		want := "--env: invalid name " + quote(bad) + ": " + rule
		if err == nil || err.Error() != want {
			t.Errorf("ValidateName(%q) = %v, want %s", bad, err, want)
		}
	}
}

func TestParseRepository(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Repository
	}{
		{"nginx", Repository{"docker.io", "library/nginx"}},
		{"team/web", Repository{"docker.io", "team/web"}},
		{"registry.example.com:5000/team/web", Repository{"registry.example.com:5000", "team/web"}},
		{"localhost/web", Repository{"localhost", "web"}},
		{"localhost:5000/a/b/c", Repository{"localhost:5000", "a/b/c"}},
		{"10.0.0.1:5000/web", Repository{"10.0.0.1:5000", "web"}},
		{"ghcr.io/org/my__app-x.y", Repository{"ghcr.io", "org/my__app-x.y"}},
		{"Registry.Example.com/web", Repository{"Registry.Example.com", "web"}},
	}
	for _, tt := range tests {
		got, err := ParseRepository(tt.in)
		if err != nil {
			t.Errorf("ParseRepository(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseRepository(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
	if got := (Repository{"docker.io", "library/nginx"}).String(); got != "docker.io/library/nginx" {
		t.Errorf("String = %q", got)
	}
}

func TestParseRepositoryErrors(t *testing.T) {
	t.Parallel()
	long := "r.io/" + strings.Repeat("a", 251)
	tests := []struct{ in, want string }{
		{"", "image repository is empty: give e.g. registry.example.com:5000/team/web"},
		{long, `image repository "` + long + `" is longer than 255 characters`},
		{"web@sha256:abc", `image repository "web@sha256:abc" contains a digest: give the digest to the release instead`},
		{"web:1.0", `image repository "web:1.0" contains a tag: give the tag to the release instead`},
		{"r.io:5000/team/web:1.0", `image repository "r.io:5000/team/web:1.0" contains a tag: give the tag to the release instead`},
		{"Team/web", `image repository "Team/web": invalid path component "Team": use lowercase letters, digits and separators . _ -`},
		{"r.io/team//web", `image repository "r.io/team//web": invalid path component "": use lowercase letters, digits and separators . _ -`},
		{"r.io/", `image repository "r.io/": invalid path component "": use lowercase letters, digits and separators . _ -`},
		{"r.io/-web", `image repository "r.io/-web": invalid path component "-web": use lowercase letters, digits and separators . _ -`},
		{"r.io/web..x", `image repository "r.io/web..x": invalid path component "web..x": use lowercase letters, digits and separators . _ -`},
		{"r.io:/web", `image repository "r.io:/web": invalid registry port "": use 1-65535`},
		{"r.io:50a/web", `image repository "r.io:50a/web": invalid registry port "50a": use 1-65535`},
		{"r.io:123456/web", `image repository "r.io:123456/web": invalid registry port "123456": use 1-65535`},
		{"r.io:0/web", `image repository "r.io:0/web": invalid registry port "0": use 1-65535`},
		{"[::1]:5000/web", `image repository "[::1]:5000/web": IPv6 registry hosts are not supported: use a DNS name`},
		{"registry.example.com:5000", `image repository "registry.example.com:5000" has no repository path: give e.g. registry.example.com:5000/team/web`},
		{"a..b/web", `image repository "a..b/web": invalid registry host "a..b"`},
		{"-r.io/web", `image repository "-r.io/web": invalid registry host "-r.io"`},
		{"r_x.io/web", `image repository "r_x.io/web": invalid registry host "r_x.io"`},
	}
	for _, tt := range tests {
		_, err := ParseRepository(tt.in)
		if err == nil {
			t.Errorf("ParseRepository(%q): no error, want %q", tt.in, tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("ParseRepository(%q) error\n got: %s\nwant: %s", tt.in, err, tt.want)
		}
	}
}

func TestValidateTag(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"1.4.2", "latest", "_x", "v1-rc.1", "A", strings.Repeat("a", 128)} {
		if err := ValidateTag(ok); err != nil {
			t.Errorf("ValidateTag(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".1", "-x", "a:b", "a/b", "a b", strings.Repeat("a", 129)} {
		want := "image tag " + quote(bad) + ` is invalid: use up to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'`
		if err := ValidateTag(bad); err == nil || err.Error() != want {
			t.Errorf("ValidateTag(%q) = %v, want %s", bad, err, want)
		}
	}
}

func TestValidateDigest(t *testing.T) {
	t.Parallel()
	hex := strings.Repeat("0123456789abcdef", 4)
	if err := ValidateDigest("sha256:" + hex); err != nil {
		t.Errorf("ValidateDigest: %v", err)
	}
	for _, bad := range []string{"", hex, "sha256:" + hex[1:], "sha256:" + strings.ToUpper(hex), "sha512:" + hex, "sha256:" + hex + "0"} {
		want := "image digest " + quote(bad) + " is invalid: use sha256: followed by 64 lowercase hex digits"
		if err := ValidateDigest(bad); err == nil || err.Error() != want {
			t.Errorf("ValidateDigest(%q) = %v, want %s", bad, err, want)
		}
	}
}

// quote is %q spelled out, so the expected strings read as the user sees them.
func quote(s string) string { return `"` + s + `"` }

func TestParseRepositoryCanonicalDockerHub(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"nginx", "docker.io/nginx", "index.docker.io/library/nginx", "registry-1.docker.io/nginx", "library/nginx"} {
		r, err := ParseRepository(in)
		if err != nil || r.String() != "docker.io/library/nginx" {
			t.Errorf("ParseRepository(%q) = %q, %v; want docker.io/library/nginx", in, r.String(), err)
		}
	}
}

func TestWithDefaultsLeavesCallerUnchanged(t *testing.T) {
	t.Parallel()
	orig := RunSpec{Ports: []Port{{ContainerPort: 80}}}
	got := orig.WithDefaults()
	if orig.Ports[0].Protocol != "" || got.Ports[0].Protocol != "tcp" {
		t.Fatalf("caller's port protocol %q, result %q: want \"\" and tcp", orig.Ports[0].Protocol, got.Ports[0].Protocol)
	}
}
