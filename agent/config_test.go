package agent

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestParseConfig(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig([]byte(`
server: tentacle.example.com:8443
data_dir: /var/lib/tentacle
registries:
  - registry: 127.0.0.1:5000
    username: ci
    password: s3cret
docker_host: unix:///var/run/docker.sock
log:
  format: json
  level: debug
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server != "tentacle.example.com:8443" || cfg.Registries[0].Username != "ci" || cfg.Log.Format != "json" || cfg.DockerHost != "unix:///var/run/docker.sock" {
		t.Fatalf("parsed %+v", cfg)
	}
	for _, in := range []string{"", "\n", "# nothing\n", "~\n", "log:\nregistries: []\n", "server: '[::1]:8443'\ndocker_host: npipe:////./pipe/docker_engine\n", "docker_host: tcp://10.0.0.2:2376\n", "data_dir: data\n", "container_prefix: agent1-\n", "container_prefix: Host_2.\n"} {
		if _, err := ParseConfig([]byte(in)); err != nil {
			t.Errorf("ParseConfig(%q): %v", in, err)
		}
	}
}

func TestParseConfigRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		// yaml's own errors, with the line in front.
		{"data_dir: [1\n", `line 1: did not find expected ',' or ']'`},
		{"server: a:1\nlog: {format: json\n", `line 2: did not find expected ',' or '}'`},
		{"server: a:1\nlog:\n  - format: json\n  level: x\n", `line 3: did not find expected '-' indicator`},
		{"server: a:1\nlog:\n\tformat: json\n", `line 3: found character that cannot start any token`},
		{"server: a:1\nlog: b: c\n", `line 2: mapping values are not allowed in this context`},
		{"log: b: c\n", `line 1: mapping values are not allowed in this context`},
		{"server: a:1\ndata_dir: \x01\n", `line 2: control characters are not allowed`},
		{"server: a:1\n\ndata_dir: \xff\n", `line 3: invalid leading UTF-8 octet`},
		{"server: a:1\n---\nserver: b:2\n", `line 2: a second YAML document ("---"): the config is one document`},
		// Keys and shapes.
		{"serverr: x\n", `line 1: unknown key "serverr"`},
		{"server: a:1\nlog:\n  formatt: json\n", `line 3: unknown key "log.formatt"`},
		{"registries:\n  - registry: r\n    usernme: u\n", `line 2: registries[0].username: is empty: set the user the agent logs in to the registry as` + "\n" + `line 3: unknown key "registries[0].usernme"`},
		{"server: a:1\nserver: b:2\n", `line 2: server: set twice (first on line 1): keep one`},
		{"server: [a]\n", `line 1: server: want a string, got a list`},
		{"log: json\n", `line 1: log: want a mapping of keys, got "json"`},
		{"registries:\n  registry: r\n", `line 2: registries: want a list, got a mapping`},
		{"registries:\n  - r.example.com\n", `line 2: registries[0]: want a mapping of keys, got "r.example.com"`},
		{"- server\n", `line 1: the config must be a mapping of keys (server:, data_dir:, …), got a list`},
		{"just words\n", `line 1: the config must be a mapping of keys (server:, data_dir:, …), got "just words"`},
		{"[a]: x\n", `line 1: a key must be a name, got a list`},
		{"base: &b {server: a:1}\n<<: *b\n", `line 1: unknown key "base"` + "\n" + `line 2: merge keys (<<) are not supported: write the keys out`},
		// Values.
		{"\nserver: tentacle.example.com\n", `line 2: server: "tentacle.example.com" must be HOST:PORT`},
		{"server: h:0\n", `line 1: server: "h:0" must be HOST:PORT with a port from 1 to 65535`},
		{"server: h:65536\n", `line 1: server: "h:65536" must be HOST:PORT with a port from 1 to 65535`},
		{"server: h:https\n", `line 1: server: "h:https" must be HOST:PORT with a port from 1 to 65535`},
		{"server: :8443\n", `line 1: server: ":8443" must be HOST:PORT`},
		{"server: https://h:8443\n", `line 1: server: "https://h:8443" must be HOST:PORT, without a scheme`},
		{"docker_host: /var/run/docker.sock\n", `line 1: docker_host: "/var/run/docker.sock": use unix://PATH, npipe:////./pipe/NAME or tcp://HOST:PORT`},
		{"docker_host: ssh://me@h\n", `line 1: docker_host: "ssh://me@h": use unix://PATH, npipe:////./pipe/NAME or tcp://HOST:PORT`},
		{"docker_host: unix://\n", `line 1: docker_host: "unix://" has no address after unix://`},
		{"server: h:1\ncontainer_prefix: agent 1\n", `line 2: container_prefix: "agent 1": use up to 64 letters, digits, '_', '.' or '-', starting with a letter or digit, e.g. agent1-`},
		{"container_prefix: -a\n", `line 1: container_prefix: "-a": use up to 64 letters, digits, '_', '.' or '-', starting with a letter or digit, e.g. agent1-`},
		{"container_prefix: a/b\n", `line 1: container_prefix: "a/b": use up to 64 letters, digits, '_', '.' or '-', starting with a letter or digit, e.g. agent1-`},
		{"server: h:1\nlog_spool_cap: 64 megabytes\n", `line 2: log_spool_cap: "64 megabytes": give a number of bytes with an optional KiB, MiB or GiB suffix, e.g. 64MiB`},
		{"log_spool_cap: -1\n", `line 1: log_spool_cap: "-1": give a number of bytes with an optional KiB, MiB or GiB suffix, e.g. 64MiB`},
		{"log_spool_cap: 1MiB\n", `line 1: log_spool_cap: "1MiB" is below the least cap, 4MiB: the agent keeps up to 1 MiB of a task's log in flight to the server`},
		{"log_spool_cap: [64MiB]\n", `line 1: log_spool_cap: want a string, got a list`},
		{"\n\nlog:\n  format: xml\n", `line 4: log.format: "xml": use console or json`},
		{"log:\n  format: json\n  level: loud\n", `line 3: log.level: "loud": use debug, info, warn or error`},
		// Registries: creds' messages, at the line of the field they name.
		{"registries:\n  - registry: r.example.com\n", `line 2: registries[0].username: is empty: set the user the agent logs in to the registry as`},
		{"registries:\n  - registry: https://r.example.com/v2\n    username: u\n    password: p\n", `line 2: registries[0].registry: "https://r.example.com/v2" has a scheme: give the host only, e.g. "r.example.com"`},
		{"registries:\n  - registry: r\n    username: u\n", `line 2: registries[0].password: neither password nor password_file is set: set one of them`},
		{"registries:\n  - {registry: r, username: u, password: p}\n  - registry: s\n    username: u\n    password: p\n    password_file: /run/secrets/s\n", `line 6: registries[1].password_file: both password and password_file are set: keep only one`},
		{"registries:\n  - {registry: r, username: u, password_file: secret}\n", `line 2: registries[0].password_file: "secret" is relative: give an absolute path`},
		{"registries:\n  - {registry: docker.io, username: u, password: p}\n  - {registry: index.docker.io, username: u, password: p}\n", `line 3: registries[1].registry: "docker.io" is already configured by registries[0]: keep one entry per registry`},
		{"registries:\n  - ~\n  - {registry: r}\n", `line 2: registries[0]: is empty: fill it in or remove the "-"`},
		{"registries:\n  - {}\n", `line 2: registries[0].registry: is empty: give the registry host as in image references, e.g. "registry.example.com:5000"`},
		// Several problems: all of them, in line order.
		{"log:\n  level: loud\nserver: x\nserverr: y\n", `line 2: log.level: "loud": use debug, info, warn or error` + "\n" + `line 3: server: "x" must be HOST:PORT` + "\n" + `line 4: unknown key "serverr"`},
	} {
		_, err := ParseConfig([]byte(tc.in))
		if err == nil || err.Error() != tc.want {
			t.Errorf("ParseConfig(%q) error:\n got %v\nwant %s", tc.in, err, tc.want)
		}
	}
}

func TestLoadConfigNamesTheFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.yaml")
	os.WriteFile(path, []byte("server: x\nregistries:\n  - registry: r\n    username: u\n    password: p\n    password_file: /p\n"), 0o600)
	_, err := loadConfig(path, false, noEnv)
	want := "config " + path + `: line 1: server: "x" must be HOST:PORT` + "\n" +
		"config " + path + ": line 6: registries[0].password_file: both password and password_file are set: keep only one"
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n got %v\nwant %s", err, want)
	}
}

func TestLoadConfigResolvesRelativeDataDirAndMissingFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.yaml")
	os.WriteFile(path, []byte("data_dir: data\n"), 0o600)
	cfg, err := loadConfig(path, false, noEnv)
	if err != nil || cfg.DataDir != filepath.Join(dir, "data") {
		t.Fatalf("LoadConfig = %+v, %v", cfg, err)
	}
	if _, err := loadConfig(filepath.Join(dir, "missing.yaml"), false, noEnv); err == nil {
		t.Fatal("a missing --config file was accepted")
	}
	if cfg, err := loadConfig(filepath.Join(dir, "missing.yaml"), true, noEnv); err != nil || cfg.DataDir != DefaultDataDir() {
		t.Fatalf("optional missing config = %+v, %v", cfg, err)
	}
}

func TestLoadConfigRefusesLegacyDefaultName(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "tentacle.yaml"), []byte("server: a:1\n"), 0o600)
	_, err := loadConfig(filepath.Join(dir, "agent.yaml"), true, noEnv)
	if err == nil || !strings.Contains(err.Error(), "the default config file is now named agent.yaml") {
		t.Fatalf("a tentacle.yaml left from before the rename was ignored: %v", err)
	}
}

func TestDefaultConfigPath(t *testing.T) {
	if p := DefaultConfigPath(); filepath.Base(p) != "agent.yaml" {
		t.Fatalf("DefaultConfigPath() = %s", p)
	}
}

func noEnv(string) (string, bool) { return "", false }

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestEnvOverridesFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.yaml")
	os.WriteFile(path, []byte(`server: file.example.com:8443
data_dir: /file/data
docker_host: unix:///file.sock
docker_config: /file/config.json
container_prefix: file-
log_spool_cap: 8MiB
registries:
  - {registry: r, username: u, password: p}
log: {format: console, level: info}
`), 0o600)
	env := map[string]string{
		"TENTACLE_SERVER":           "env.example.com:9443",
		"TENTACLE_DATA_DIR":         filepath.Join(dir, "env-data"),
		"TENTACLE_DOCKER_HOST":      "tcp://10.0.0.2:2376",
		"TENTACLE_DOCKER_CONFIG":    "/env/config.json",
		"TENTACLE_CONTAINER_PREFIX": "agent2.",
		"TENTACLE_LOG_SPOOL_CAP":    "16MiB",
		"TENTACLE_LOG_FORMAT":       "json",
		"TENTACLE_LOG_LEVEL":        "debug",
	}
	cfg, err := loadConfig(path, false, envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Server: "env.example.com:9443", DataDir: filepath.Join(dir, "env-data"), DockerHost: "tcp://10.0.0.2:2376", DockerConfig: "/env/config.json",
		ContainerPrefix: "agent2.", LogSpoolCap: "16MiB", Registries: cfg.Registries}
	want.Log.Format, want.Log.Level = "json", "debug"
	if !reflect.DeepEqual(cfg, want) || len(cfg.Registries) != 1 {
		t.Fatalf("with env: %+v\nwant %+v", cfg, want)
	}
	// Unset and empty variables leave the file's values.
	for _, lookup := range []func(string) (string, bool){noEnv, envOf(map[string]string{"TENTACLE_SERVER": "", "TENTACLE_DATA_DIR": ""})} {
		cfg, err := loadConfig(path, false, lookup)
		if err != nil || cfg.Server != "file.example.com:8443" || cfg.DataDir != "/file/data" || cfg.Log.Format != "console" {
			t.Fatalf("without env: %+v, %v", cfg, err)
		}
	}
	// The environment applies without a file too, and sets the data dir
	// before the default does.
	cfg, err = loadConfig(filepath.Join(dir, "missing", "agent.yaml"), true, envOf(env))
	if err != nil || cfg.Server != "env.example.com:9443" || cfg.DataDir != env["TENTACLE_DATA_DIR"] {
		t.Fatalf("env without a file: %+v, %v", cfg, err)
	}
}

func TestEnvRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, value, want string }{
		{"TENTACLE_SERVER", "tentacle.example.com", `TENTACLE_SERVER: "tentacle.example.com" must be HOST:PORT`},
		{"TENTACLE_SERVER", "h:70000", `TENTACLE_SERVER: "h:70000" must be HOST:PORT with a port from 1 to 65535`},
		{"TENTACLE_DATA_DIR", "data", `TENTACLE_DATA_DIR: "data" must be an absolute path`},
		{"TENTACLE_DOCKER_HOST", "http://h:2375", `TENTACLE_DOCKER_HOST: "http://h:2375": use unix://PATH, npipe:////./pipe/NAME or tcp://HOST:PORT`},
		{"TENTACLE_LOG_FORMAT", "xml", `TENTACLE_LOG_FORMAT: "xml": use console or json`},
		{"TENTACLE_CONTAINER_PREFIX", "a:b", `TENTACLE_CONTAINER_PREFIX: "a:b": use up to 64 letters, digits, '_', '.' or '-', starting with a letter or digit, e.g. agent1-`},
		{"TENTACLE_LOG_LEVEL", "loud", `TENTACLE_LOG_LEVEL: "loud": use debug, info, warn or error`},
		{"TENTACLE_LOG_SPOOL_CAP", "64M", `TENTACLE_LOG_SPOOL_CAP: "64M": give a number of bytes with an optional KiB, MiB or GiB suffix, e.g. 64MiB`},
	} {
		in := Config{Server: "a:1"}
		cfg, err := ApplyEnv(in, envOf(map[string]string{tc.name: tc.value}))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s=%s: error %v, want %s", tc.name, tc.value, err, tc.want)
		}
		if !reflect.DeepEqual(cfg, in) {
			t.Errorf("%s=%s: config changed on error: %+v", tc.name, tc.value, cfg)
		}
	}
}

// log_spool_cap reads as a user writes it; unset is the 64 MiB default.
func TestLogSpoolCap(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]uint64{
		"": DefaultLogSpoolCap, "log_spool_cap: 67108864\n": 64 << 20, "log_spool_cap: 4MiB\n": 4 << 20,
		"log_spool_cap: 512 MiB\n": 512 << 20, "log_spool_cap: 2GiB\n": 2 << 30, "log_spool_cap: 8192KiB\n": 8 << 20,
	} {
		cfg, err := ParseConfig([]byte(in))
		if err != nil || cfg.SpoolCap() != want {
			t.Errorf("ParseConfig(%q).SpoolCap() = %d, %v; want %d", in, cfg.SpoolCap(), err, want)
		}
	}
	cfg, err := ApplyEnv(Config{}, envOf(map[string]string{"TENTACLE_LOG_SPOOL_CAP": "16MiB"}))
	if err != nil || cfg.SpoolCap() != 16<<20 {
		t.Errorf("TENTACLE_LOG_SPOOL_CAP=16MiB: cap %d, %v", cfg.SpoolCap(), err)
	}
}

var startsWithLine = regexp.MustCompile(`^line [1-9][0-9]*: `)

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("server: a:1\nregistries:\n  - registry: r\n    username: u\n    password: p\n"))
	f.Add([]byte("container_prefix: agent1-\n"))
	f.Add([]byte("log_spool_cap: 64MiB\n"))
	f.Add([]byte("log_spool_cap: 99999999999 GiB\n"))
	f.Add([]byte("container_prefix: \"a b\"\n"))
	f.Add([]byte("log: {format: json}\n"))
	f.Add([]byte("server: h:8443\ndata_dir: d\ndocker_host: tcp://h:2376\ndocker_config: /c\nlog:\n  level: warn\n"))
	f.Add([]byte("registries:\n  - &e {registry: r, username: u, password_file: /p}\n  - *e\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("server: x\n---\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err != nil {
			// Every problem points at a line.
			for _, msg := range strings.Split(err.Error(), "\n") {
				if !startsWithLine.MatchString(msg) {
					t.Fatalf("ParseConfig(%q): error without a line: %q", data, msg)
				}
			}
			return
		}
		// Whatever parses must validate again...
		if ps := problems(cfg); len(ps) != 0 {
			t.Fatalf("ParseConfig(%q) accepted %+v with problems %v", data, cfg, ps)
		}
		// ... and come back the same through its YAML.
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseConfig(out)
		if len(cfg.Registries) == 0 {
			cfg.Registries, again.Registries = nil, nil // [] and none are the same
		}
		if err != nil || !reflect.DeepEqual(again, cfg) {
			t.Fatalf("round trip of %+v through\n%s= %+v, %v", cfg, out, again, err)
		}
	})
}
