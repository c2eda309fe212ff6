// Package agent is the Tentacle agent: it enrolls with a server, keeps a
// session to it (Hello, heartbeats, reconnects with jittered backoff),
// journals the tasks it receives, runs them through the Docker seam and
// reports events and logs back.
//
// It must not import server packages: what it shares with the server lives
// in proto/ and internal/.
package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"gopkg.in/yaml.v3"

	"github.com/tentacle-deploy/tentacle/agent/creds"
	"github.com/tentacle-deploy/tentacle/internal/logging"
)

// Config is the agent's configuration file (YAML).
type Config struct {
	// Server overrides the address recorded at enrollment.
	Server string `yaml:"server"`
	// DataDir holds the key, certificates, enrollment and journal.
	DataDir string `yaml:"data_dir"`
	// Registries are the agent's own registry credentials; the server never
	// sends any.
	Registries []creds.Entry `yaml:"registries"`
	// DockerConfig is a docker config.json consulted after Registries.
	DockerConfig string `yaml:"docker_config"`
	// DockerHost overrides DOCKER_HOST.
	DockerHost string          `yaml:"docker_host"`
	Log        logging.Options `yaml:"log"`
}

// DefaultConfigPath is where install and run look without --config.
func DefaultConfigPath() string {
	if runtime.GOOS == "windows" {
		return filepath.Join(programData(), "Tentacle", "tentacle.yaml")
	}
	return "/etc/tentacle/tentacle.yaml"
}

// DefaultDataDir is used when the config names none.
func DefaultDataDir() string {
	if runtime.GOOS == "windows" {
		return filepath.Join(programData(), "Tentacle", "data")
	}
	return "/var/lib/tentacle"
}

func programData() string {
	if p := os.Getenv("ProgramData"); p != "" {
		return p
	}
	return `C:\ProgramData`
}

// LoadConfig reads the config file. A missing file is an error unless
// optional is set, in which case defaults are returned.
func LoadConfig(path string, optional bool) (Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && optional {
		return Config{DataDir: DefaultDataDir()}, nil
	}
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	if cfg.DataDir != "" && !filepath.IsAbs(cfg.DataDir) {
		cfg.DataDir = filepath.Join(filepath.Dir(path), cfg.DataDir)
	}
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir()
	}
	return cfg, nil
}

// ParseConfig parses and validates a config; unknown keys are errors so a
// typo does not silently drop a setting.
func ParseConfig(data []byte) (Config, error) {
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// An empty file decodes to io.EOF: it is a valid config of defaults.
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, err
	}
	if _, err := creds.New(cfg.Registries, ""); err != nil {
		return Config{}, err
	}
	if _, err := logging.New(cfg.Log, nil); err != nil {
		return Config{}, fmt.Errorf("log: %w", err)
	}
	return cfg, nil
}
