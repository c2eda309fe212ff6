package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

const defaultServer = "localhost:8443"

// settings is where and how to call the server, after precedence has been
// applied. The *From fields name the source so errors can point at it.
type settings struct {
	server, serverFrom string
	token              string
	caFile, caFileFrom string
	// configPath is the config file read, or the one that would have been.
	configPath string
}

// fileConfig is the YAML config file.
type fileConfig struct {
	Server string
	Token  string
	CAFile string
}

// resolveSettings applies flag > environment > config file > default.
func (c *cli) resolveSettings(cmd *cobra.Command) (settings, error) {
	file, path, err := c.loadConfig(cmd)
	if err != nil {
		return settings{}, err
	}
	var s settings
	s.configPath = path
	pick := func(flag, env, fromFile string) (string, string) {
		if cmd.Flags().Changed(flag) {
			v, _ := cmd.Flags().GetString(flag)
			return v, "--" + flag
		}
		if v := c.getenv(env); v != "" {
			return v, env
		}
		if fromFile != "" {
			return fromFile, path
		}
		return "", ""
	}
	s.server, s.serverFrom = pick("server", "TENTACLE_SERVER", file.Server)
	if s.server == "" {
		s.server, s.serverFrom = defaultServer, "the default"
	}
	s.token, _ = pick("token", "TENTACLE_TOKEN", file.Token)
	s.caFile, s.caFileFrom = pick("ca-file", "TENTACLE_CA_FILE", file.CAFile)
	return s, nil
}

// loadConfig reads the config file named by --config, or the default one if
// it exists. It returns the path it used for error messages either way.
func (c *cli) loadConfig(cmd *cobra.Command) (fileConfig, string, error) {
	path, explicit := c.configPath, cmd.Flags().Changed("config")
	if !explicit {
		dir, err := c.userConfigDir()
		if err != nil {
			// No home directory (a bare container): run without a file.
			return fileConfig{}, "", nil
		}
		path = filepath.Join(dir, "tentacle", "tentaclectl.yaml")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return fileConfig{}, path, nil
		}
		return fileConfig{}, path, fmt.Errorf("config: %w", err)
	}
	cfg, err := parseConfig(data)
	if err != nil {
		return fileConfig{}, path, fmt.Errorf("config %s: %w", path, err)
	}
	if cfg.CAFile != "" && !filepath.IsAbs(cfg.CAFile) {
		// As in kubeconfig: the file and its CA usually travel together.
		cfg.CAFile = filepath.Join(filepath.Dir(path), cfg.CAFile)
	}
	return cfg, path, nil
}

// parseConfig walks the YAML mapping itself rather than decoding into a
// struct, so that a misspelt key is an error naming that key and its line.
func parseConfig(data []byte) (fileConfig, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fileConfig{}, err
	}
	var cfg fileConfig
	if len(doc.Content) == 0 {
		return cfg, nil // an empty file
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return cfg, fmt.Errorf("line %d: want a mapping with the keys server, token and ca_file", m.Line)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		key, val := m.Content[i], m.Content[i+1]
		var dst *string
		switch key.Value {
		case "server":
			dst = &cfg.Server
		case "token":
			dst = &cfg.Token
		case "ca_file":
			dst = &cfg.CAFile
		default:
			return cfg, fmt.Errorf("line %d: unknown key %q: use server, token or ca_file", key.Line, key.Value)
		}
		if seen[key.Value] {
			return cfg, fmt.Errorf("line %d: key %q is set twice", key.Line, key.Value)
		}
		seen[key.Value] = true
		if val.Kind != yaml.ScalarNode {
			return cfg, fmt.Errorf("line %d: %s must be a string", val.Line, key.Value)
		}
		if val.Tag != "!!null" {
			*dst = val.Value
		}
	}
	return cfg, nil
}
