package spec

import (
	"strings"
	"testing"
	"time"
)

// Validate's checks of the container fields beyond env, ports and timings.
func TestRunSpecValidateContainerFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		spec RunSpec
		want string // "" means valid
	}{
		{"all fields valid", RunSpec{
			Entrypoint: []string{"/bin/app"}, WorkingDir: "/srv/app", User: "1000:1000",
			Volumes:       []Volume{{Source: "data", Target: "/data"}, {Source: "/etc/app", Target: "/etc/app", ReadOnly: true}},
			Networks:      []Network{{Name: "backend", Aliases: []string{"api", "api.internal"}}, {Name: "front_1"}},
			RestartPolicy: "on-failure", RestartMaxRetries: 5,
			Labels:      map[string]string{"com.example.team": "web", "empty": ""},
			MemoryBytes: 256 << 20, NanoCPUs: 500_000_000,
			Healthcheck: &Healthcheck{Command: "curl -f http://localhost/", Interval: 5 * time.Second, Timeout: time.Second, Retries: 3},
			StopSignal:  "SIGINT", PullPolicy: "always",
			Log:        LogConfig{Driver: "json-file", Options: map[string]string{"max-size": "10m"}},
			ExtraHosts: []ExtraHost{{Name: "db", IP: "10.0.0.5"}, {Name: "v6.local", IP: "::1"}},
		}, ""},
		{"user name and group", RunSpec{User: "www-data:www-data"}, ""},
		{"user name only", RunSpec{User: "nobody"}, ""},
		{"healthcheck disabled", RunSpec{Healthcheck: &Healthcheck{Disable: true}}, ""},
		{"healthcheck timings only", RunSpec{Healthcheck: &Healthcheck{Interval: time.Second}}, ""},
		{"signal forms", RunSpec{StopSignal: "SIGRTMIN+3"}, ""},
		{"signal number", RunSpec{StopSignal: "15"}, ""},
		{"signal without SIG", RunSpec{StopSignal: "TERM"}, ""},
		{"pull if-not-present", RunSpec{PullPolicy: "if-not-present"}, ""},

		{"NUL in entrypoint", RunSpec{Entrypoint: []string{"/a", "b\x00"}},
			"entrypoint[1]: contains a NUL byte"},
		{"relative working dir", RunSpec{WorkingDir: "app"},
			`working_dir: "app": use an absolute path, e.g. /app`},
		{"bad user", RunSpec{User: "a b"},
			`user: "a b": use NAME or UID, optionally followed by :GROUP or :GID, e.g. 1000:1000`},
		{"empty group", RunSpec{User: "1000:"},
			`user: "1000:": use NAME or UID, optionally followed by :GROUP or :GID, e.g. 1000:1000`},
		{"volume without source", RunSpec{Volumes: []Volume{{Target: "/data"}}},
			"volumes[0]: source is empty: use a volume name or an absolute host path"},
		{"relative bind source", RunSpec{Volumes: []Volume{{Source: "./data", Target: "/data"}}},
			`volumes[0]: source "./data": use a volume name (no '/') or an absolute host path`},
		{"bad volume name", RunSpec{Volumes: []Volume{{Source: "x", Target: "/data"}}},
			`volumes[0]: volume name "x": use 2 or more letters, digits, '_', '.' or '-', starting with a letter or digit`},
		{"relative target", RunSpec{Volumes: []Volume{{Source: "data", Target: "data"}}},
			`volumes[0]: target "data": use an absolute path in the container, e.g. /data`},
		{"root target", RunSpec{Volumes: []Volume{{Source: "data", Target: "/"}}},
			`volumes[0]: target "/": mount below the container's root, e.g. /data`},
		{"target twice", RunSpec{Volumes: []Volume{{Source: "a1", Target: "/data"}, {Source: "b1", Target: "/data/"}}},
			`volumes[1]: target "/data/" is mounted twice: give each mount its own target`},
		{"bad network name", RunSpec{Networks: []Network{{Name: "-net"}}},
			`networks[0]: name "-net": use letters, digits, '_', '.' or '-', starting with a letter or digit`},
		{"predefined network", RunSpec{Networks: []Network{{Name: "host"}}},
			`networks[0]: "host" is one of Docker's predefined networks: use a user-defined network name`},
		{"network twice", RunSpec{Networks: []Network{{Name: "n1"}, {Name: "n1"}}},
			`networks[1]: network "n1" is listed twice: give all its aliases in one entry`},
		{"bad alias", RunSpec{Networks: []Network{{Name: "n1", Aliases: []string{"ok", "a b"}}}},
			`networks[0].aliases[1]: "a b": use a host name of letters, digits, '-', '_' and '.'`},
		{"negative retries", RunSpec{RestartPolicy: "on-failure", RestartMaxRetries: -1},
			"restart_max_retries: -1 is negative: use 0 for unlimited retries"},
		{"retries without on-failure", RunSpec{RestartPolicy: "always", RestartMaxRetries: 3},
			"restart_max_retries: only applies to restart_policy on-failure: set the policy to on-failure or leave out the retries"},
		{"reserved label", RunSpec{Labels: map[string]string{"tentacle.app": "x"}},
			`labels: key "tentacle.app" uses the reserved "tentacle." prefix: choose another key, e.g. com.example.app`},
		{"empty label key", RunSpec{Labels: map[string]string{"": "x"}},
			`labels: key "": use a non-empty KEY without '=' or NUL`},
		{"NUL in label value", RunSpec{Labels: map[string]string{"k": "\x00"}},
			`labels: value of "k" contains a NUL byte`},
		{"memory too small", RunSpec{MemoryBytes: 1024},
			"memory_bytes: 1024 is below Docker's minimum of 6MiB: use e.g. 256m, or 0 for no limit"},
		{"negative memory", RunSpec{MemoryBytes: -1},
			"memory_bytes: -1 is below Docker's minimum of 6MiB: use e.g. 256m, or 0 for no limit"},
		{"cpus too small", RunSpec{NanoCPUs: 1000},
			"nano_cpus: 1000 is below Docker's minimum of 0.01 CPU (10000000): use e.g. 0.5 CPU, or 0 for no limit"},
		{"disable with command", RunSpec{Healthcheck: &Healthcheck{Disable: true, Command: "true"}},
			"healthcheck: disable is set together with a command, timing or retries: either disable the check or override it"},
		{"NUL in health command", RunSpec{Healthcheck: &Healthcheck{Command: "a\x00"}},
			"healthcheck.command: contains a NUL byte"},
		{"health interval too short", RunSpec{Healthcheck: &Healthcheck{Interval: time.Microsecond}},
			"healthcheck.interval: 1µs: use at least 1ms, or 0 for the image's"},
		{"negative health timeout", RunSpec{Healthcheck: &Healthcheck{Timeout: -time.Second}},
			"healthcheck.timeout: -1s: use at least 1ms, or 0 for the image's"},
		{"negative health retries", RunSpec{Healthcheck: &Healthcheck{Retries: -2}},
			"healthcheck.retries: -2 is negative: use 0 for the image's"},
		{"bad stop signal", RunSpec{StopSignal: "sigterm"},
			`stop_signal: "sigterm": use a signal name such as SIGTERM or SIGINT, or its number`},
		{"bad pull policy", RunSpec{PullPolicy: "never"},
			`pull_policy: "never": use always or if-not-present`},
		{"bad log driver", RunSpec{Log: LogConfig{Driver: "json file"}},
			`log.driver: "json file": use a logging driver name such as json-file, local or syslog`},
		{"bad log option", RunSpec{Log: LogConfig{Options: map[string]string{"a=b": "c"}}},
			`log.options: "a=b": use a non-empty KEY without '=' or NUL, and a value without NUL`},
		{"bad extra host name", RunSpec{ExtraHosts: []ExtraHost{{Name: "a b", IP: "10.0.0.1"}}},
			`extra_hosts[0]: host name "a b": use letters, digits, '-', '_' and '.'`},
		{"bad extra host IP", RunSpec{ExtraHosts: []ExtraHost{{Name: "db", IP: "db.local"}}},
			`extra_hosts[0]: IP "db.local" is not an IP address`},
		{"labels in key order", RunSpec{Labels: map[string]string{"tentacle.b": "", "tentacle.a": ""}}, strings.Join([]string{
			`labels: key "tentacle.a" uses the reserved "tentacle." prefix: choose another key, e.g. com.example.a`,
			`labels: key "tentacle.b" uses the reserved "tentacle." prefix: choose another key, e.g. com.example.b`,
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

func TestParseVolume(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, err string
		want    Volume
	}{
		{in: "data:/var/lib/app", want: Volume{Source: "data", Target: "/var/lib/app"}},
		{in: "/srv/conf:/etc/app:ro", want: Volume{Source: "/srv/conf", Target: "/etc/app", ReadOnly: true}},
		{in: "data:/d:rw", want: Volume{Source: "data", Target: "/d"}},
		{in: "data", err: "use SRC:DST[:ro], SRC a volume name or an absolute host path, e.g. data:/var/lib/app or /srv/conf:/etc/app:ro"},
		{in: "data:/d:rx", err: `mode "rx": use ro or rw`},
		{in: "data:d", err: `target "d": use an absolute path in the container, e.g. /data`},
		{in: "rel/dir:/d", err: `source "rel/dir": use a volume name (no '/') or an absolute host path`},
	}
	for _, tt := range tests {
		got, err := ParseVolume(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseVolume(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseVolume(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseNetwork(t *testing.T) {
	t.Parallel()
	n, err := ParseNetwork("backend:api,api2")
	if err != nil || n.Name != "backend" || strings.Join(n.Aliases, ",") != "api,api2" {
		t.Errorf("ParseNetwork = %+v, %v", n, err)
	}
	if n, err := ParseNetwork("backend"); err != nil || n.Name != "backend" || n.Aliases != nil {
		t.Errorf("ParseNetwork(backend) = %+v, %v", n, err)
	}
	for in, want := range map[string]string{
		"backend:":  "no alias after ':': use NAME or NAME:ALIAS[,ALIAS...]",
		"bridge":    `"bridge" is one of Docker's predefined networks: use a user-defined network name`,
		"b:ok,,x":   `aliases[1]: "": use a host name of letters, digits, '-', '_' and '.'`,
		"b n:alias": `name "b n": use letters, digits, '_', '.' or '-', starting with a letter or digit`,
	} {
		if _, err := ParseNetwork(in); err == nil || err.Error() != want {
			t.Errorf("ParseNetwork(%q) error = %v, want %q", in, err, want)
		}
	}
}

func TestParseExtraHost(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]ExtraHost{
		"db:10.0.0.5": {Name: "db", IP: "10.0.0.5"},
		"v6:::1":      {Name: "v6", IP: "::1"},
		"v6:[::1]":    {Name: "v6", IP: "::1"},
	} {
		if got, err := ParseExtraHost(in); err != nil || got != want {
			t.Errorf("ParseExtraHost(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"db":          "missing ':': use NAME:IP, e.g. db:10.0.0.5",
		"db:x":        `IP "x" is not an IP address`,
		"a b:1.2.3.4": `host name "a b": use letters, digits, '-', '_' and '.'`,
	} {
		if _, err := ParseExtraHost(in); err == nil || err.Error() != want {
			t.Errorf("ParseExtraHost(%q) error = %v, want %q", in, err, want)
		}
	}
}

func TestParseMemory(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{
		"0": 0, "6291456": 6 << 20, "256m": 256 << 20, "256M": 256 << 20, "1g": 1 << 30,
		"1.5g": 3 << 29, "512MiB": 512 << 20, "64mb": 64 << 20, "8192k": 8192 << 10, "7340032b": 7 << 20,
	} {
		if got, err := ParseMemory(in); err != nil || got != want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "m", "-1m", "1x", "1bb", "1.m"} {
		if _, err := ParseMemory(in); err == nil || err.Error() != quote(in)+" is not a size: use a number with b, k, m or g, e.g. 256m" {
			t.Errorf("ParseMemory(%q) error = %v", in, err)
		}
	}
	if _, err := ParseMemory("99999999999t"); err == nil || err.Error() != `"99999999999t" is too large` {
		t.Errorf("ParseMemory(huge) error = %v", err)
	}
}

func TestParseCPUs(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"0.5": 500_000_000, "2": 2e9, "1.25": 1_250_000_000, ".1": 100_000_000, "0.01": 10_000_000, "3.": 3e9} {
		if got, err := ParseCPUs(in); err != nil || got != want {
			t.Errorf("ParseCPUs(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", ".", "-1", "1e3", "0.0000000001", "half", "1234567"} {
		if _, err := ParseCPUs(in); err == nil || err.Error() != quote(in)+" is not a number of CPUs: use e.g. 0.5 or 2, at most 9 decimals" {
			t.Errorf("ParseCPUs(%q) error = %v", in, err)
		}
	}
}

func TestParseKeyValue(t *testing.T) {
	t.Parallel()
	if k, v, err := ParseKeyValue("a=b=c"); err != nil || k != "a" || v != "b=c" {
		t.Errorf("ParseKeyValue = %q, %q, %v", k, v, err)
	}
	for _, in := range []string{"a", "=b"} {
		if _, _, err := ParseKeyValue(in); err == nil || err.Error() != "use KEY=VALUE (KEY= for an empty value)" {
			t.Errorf("ParseKeyValue(%q) error = %v", in, err)
		}
	}
}
