package agent

import (
	"errors"
	"fmt"
	"path/filepath"
)

// envOverrides are the settings the environment may override, each checked
// as in the file. Registries are file-only: secrets in the environment leak
// into process listings, crash reports and child processes.
var envOverrides = []struct {
	name  string
	field func(*Config) *string
	check func(string) string
}{
	{"TENTACLE_SERVER", func(c *Config) *string { return &c.Server }, checkServer},
	{"TENTACLE_DATA_DIR", func(c *Config) *string { return &c.DataDir }, checkEnvDataDir},
	{"TENTACLE_DOCKER_HOST", func(c *Config) *string { return &c.DockerHost }, checkDockerHost},
	{"TENTACLE_DOCKER_CONFIG", func(c *Config) *string { return &c.DockerConfig }, func(string) string { return "" }},
	{"TENTACLE_CONTAINER_PREFIX", func(c *Config) *string { return &c.ContainerPrefix }, checkContainerPrefix},
	{"TENTACLE_LOG_SPOOL_CAP", func(c *Config) *string { return &c.LogSpoolCap }, checkLogSpoolCap},
	{"TENTACLE_METRICS_ADDR", func(c *Config) *string { return &c.MetricsAddr }, CheckMetricsAddr},
	{"TENTACLE_LOG_FORMAT", func(c *Config) *string { return &c.Log.Format }, checkLogFormat},
	{"TENTACLE_LOG_LEVEL", func(c *Config) *string { return &c.Log.Level }, checkLogLevel},
}

// ApplyEnv overrides cfg with the environment variables TENTACLE_SERVER,
// TENTACLE_DATA_DIR, TENTACLE_DOCKER_HOST, TENTACLE_DOCKER_CONFIG,
// TENTACLE_CONTAINER_PREFIX, TENTACLE_LOG_SPOOL_CAP, TENTACLE_METRICS_ADDR,
// TENTACLE_LOG_FORMAT and TENTACLE_LOG_LEVEL, read through lookup
// (os.LookupEnv in production). An empty variable is the same as an unset
// one. TENTACLE_DATA_DIR must be absolute: a service's working directory is
// nothing to rely on. Values are checked as in the file; on error cfg is
// returned unchanged.
func ApplyEnv(cfg Config, lookup func(string) (string, bool)) (Config, error) {
	out := cfg
	var errs []error
	for _, o := range envOverrides {
		v, ok := lookup(o.name)
		if !ok || v == "" {
			continue
		}
		if msg := o.check(v); msg != "" {
			errs = append(errs, fmt.Errorf("%s: %s", o.name, msg))
			continue
		}
		*o.field(&out) = v
	}
	if err := errors.Join(errs...); err != nil {
		return cfg, err
	}
	return out, nil
}

func checkEnvDataDir(s string) string {
	if !filepath.IsAbs(s) {
		return fmt.Sprintf("%q must be an absolute path", s)
	}
	return ""
}
