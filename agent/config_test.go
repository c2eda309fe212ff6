package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
log:
  format: json
  level: debug
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server != "tentacle.example.com:8443" || cfg.Registries[0].Username != "ci" || cfg.Log.Format != "json" {
		t.Fatalf("parsed %+v", cfg)
	}
	if _, err := ParseConfig(nil); err != nil {
		t.Fatalf("empty config rejected: %v", err)
	}
}

func TestParseConfigRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"serverr: x\n", "field serverr not found"},
		{"log:\n  format: xml\n", `log: --log-format: "xml": use console or json`},
		{"registries:\n  - registry: r.example.com\n", "registries[0]"},
		{"data_dir: [1\n", "yaml:"},
	} {
		_, err := ParseConfig([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseConfig(%q) error = %v, want it to contain %q", tc.in, err, tc.want)
		}
	}
}

func TestLoadConfigResolvesRelativeDataDirAndMissingFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tentacle.yaml")
	os.WriteFile(path, []byte("data_dir: data\n"), 0o600)
	cfg, err := LoadConfig(path, false)
	if err != nil || cfg.DataDir != filepath.Join(dir, "data") {
		t.Fatalf("LoadConfig = %+v, %v", cfg, err)
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.yaml"), false); err == nil {
		t.Fatal("a missing --config file was accepted")
	}
	if cfg, err := LoadConfig(filepath.Join(dir, "missing.yaml"), true); err != nil || cfg.DataDir != DefaultDataDir() {
		t.Fatalf("optional missing config = %+v, %v", cfg, err)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("server: a:1\nregistries:\n  - registry: r\n    username: u\n    password: p\n"))
	f.Add([]byte("log: {format: json}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err != nil {
			return
		}
		// Whatever parses must be usable: its registries validate again.
		for _, r := range cfg.Registries {
			if r.Registry == "" || r.Username == "" {
				t.Fatalf("accepted registry entry without host or user: %+v", r)
			}
		}
	})
}
