// Package creds holds the registry credentials the agent pulls with. They
// belong to the host the agent runs on: its own config entries first, then
// docker's config.json (auths, credHelpers, credsStore), so an agent on a
// host where `docker login` works pulls the same way docker does.
//
// It must never accept credentials from the server, and never log, print
// or put a secret in an error message.
package creds

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"
)

// Auth is what a registry needs from the agent: a username and password,
// or an identity (refresh) token. Its String, GoString and zap forms hide
// the secrets, so printing one by mistake leaks nothing.
type Auth struct {
	Username      string
	Password      string
	IdentityToken string
}

// String shows the username and whether secrets are present.
func (a Auth) String() string {
	return fmt.Sprintf("Auth{Username: %q, Password: %s, IdentityToken: %s}",
		a.Username, redacted(a.Password), redacted(a.IdentityToken))
}

// GoString keeps %#v from printing the secrets.
func (a Auth) GoString() string { return a.String() }

// MarshalLogObject makes zap.Any/zap.Object log the redacted form.
func (a Auth) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("username", a.Username)
	enc.AddBool("password_set", a.Password != "")
	enc.AddBool("identity_token_set", a.IdentityToken != "")
	return nil
}

// MarshalJSON keeps reflection-based loggers (zap.Any on a containing
// struct or slice, %+v of JSON) from writing the secrets.
func (a Auth) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{
		"username": a.Username, "password_set": a.Password != "", "identity_token_set": a.IdentityToken != "",
	})
}

func redacted(s string) string {
	if s == "" {
		return "<none>"
	}
	return "<redacted>"
}

// Entry is one registry in the agent's own config.
type Entry struct {
	// Registry is the registry host with optional port, as in an image
	// reference: "registry.example.com:5000", "docker.io".
	Registry string `yaml:"registry"`
	Username string `yaml:"username"`
	// Password and PasswordFile are exclusive. The file is read at each
	// lookup, so a rotated secret is picked up without a restart.
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
}

// String hides the password, like Auth.
func (e Entry) String() string {
	return fmt.Sprintf("Entry{Registry: %q, Username: %q, Password: %s, PasswordFile: %q}",
		e.Registry, e.Username, redacted(e.Password), e.PasswordFile)
}

// GoString keeps %#v from printing the password.
func (e Entry) GoString() string { return e.String() }

// MarshalJSON writes the redacted form, like Auth.MarshalJSON: a config
// dumped for debugging must not carry the password.
func (e Entry) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{
		"registry": e.Registry, "username": e.Username, "password_set": e.Password != "", "password_file": e.PasswordFile,
	})
}

// MarshalLogObject makes zap log the redacted form.
func (e Entry) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("registry", e.Registry)
	enc.AddString("username", e.Username)
	enc.AddBool("password_set", e.Password != "")
	enc.AddString("password_file", e.PasswordFile)
	return nil
}

// DefaultHelperTimeout bounds one run of a docker credential helper; a
// helper waiting for a keychain prompt on a headless host must not hang a
// deployment.
const DefaultHelperTimeout = 20 * time.Second

// Store answers which credentials the agent uses for a registry host. It is
// safe for concurrent use: it holds no mutable state, and re-reads password
// files and docker's config.json at every lookup.
type Store struct {
	entries          []Entry // Registry normalized
	dockerConfigPath string
	helperTimeout    time.Duration
}

// New validates the agent's entries and returns a store that falls back to
// the docker config.json at dockerConfigPath ("" for none; a path that does
// not exist is the same as none, as for docker itself).
func New(entries []Entry, dockerConfigPath string) (*Store, error) {
	s := &Store{dockerConfigPath: dockerConfigPath, helperTimeout: DefaultHelperTimeout}
	var errs []error
	seen := map[string]int{}
	for i, e := range entries {
		if err := validateEntry(e); err != nil {
			errs = append(errs, fmt.Errorf("registries[%d].%w", i, err))
			continue
		}
		e.Registry = normalizeHost(e.Registry)
		if j, dup := seen[e.Registry]; dup {
			errs = append(errs, fmt.Errorf("registries[%d].registry: %q is already configured by registries[%d]: keep one entry per registry", i, e.Registry, j))
			continue
		}
		seen[e.Registry] = i
		s.entries = append(s.entries, e)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

func validateEntry(e Entry) error {
	host := e.Registry
	switch {
	case host == "":
		return errors.New(`registry: is empty: give the registry host as in image references, e.g. "registry.example.com:5000"`)
	case strings.Contains(host, "://"):
		_, rest, _ := strings.Cut(host, "://")
		return fmt.Errorf("registry: %q has a scheme: give the host only, e.g. %q", host, strings.SplitN(rest, "/", 2)[0])
	case strings.Contains(host, "/"):
		return fmt.Errorf("registry: %q has a path: give the host only, e.g. %q (the credentials apply to every repository on it)", host, strings.SplitN(host, "/", 2)[0])
	case strings.ContainsAny(host, " \t\r\n@"):
		return fmt.Errorf("registry: %q is not a host name: give the host only, e.g. registry.example.com:5000", host)
	}
	if e.Username == "" {
		return errors.New("username: is empty: set the user the agent logs in to the registry as")
	}
	switch {
	case e.Password == "" && e.PasswordFile == "":
		return errors.New("password: neither password nor password_file is set: set one of them")
	case e.Password != "" && e.PasswordFile != "":
		return errors.New("password_file: both password and password_file are set: keep only one")
	case e.PasswordFile != "" && !filepath.IsAbs(e.PasswordFile):
		// The agent runs as a service whose working directory is not the
		// config file's, so a relative path would point somewhere unexpected.
		return fmt.Errorf("password_file: %q is relative: give an absolute path", e.PasswordFile)
	}
	return nil
}

// Lookup returns the credentials for a registry host ("host[:port]"), and
// false when the agent has none for it (the pull is then anonymous). The
// error reports a broken source: an unreadable password file, a malformed
// config.json or a failing credential helper; it never contains a secret.
func (s *Store) Lookup(registryHost string) (Auth, bool, error) {
	host := normalizeHost(registryHost)
	for _, e := range s.entries {
		if e.Registry != host {
			continue
		}
		if e.PasswordFile == "" {
			return Auth{Username: e.Username, Password: e.Password}, true, nil
		}
		pw, err := readPasswordFile(e.PasswordFile)
		if err != nil {
			return Auth{}, false, fmt.Errorf("credentials for %s: %w", e.Registry, err)
		}
		return Auth{Username: e.Username, Password: pw}, true, nil
	}
	if s.dockerConfigPath == "" {
		return Auth{}, false, nil
	}
	cfg, err := readDockerConfig(s.dockerConfigPath)
	if err != nil || cfg == nil {
		return Auth{}, false, err
	}
	return s.lookupDocker(cfg, host)
}

func readPasswordFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		// The *PathError names the file and the cause, never the contents.
		return "", fmt.Errorf("read password_file: %w", err)
	}
	// Editors and `echo` add a final newline that is not part of the secret.
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("password_file %s is empty", path)
	}
	return pw, nil
}

// Docker Hub answers to several names; docker's config.json uses the
// historical index URL as its key.
const (
	hubHost       = "docker.io"
	hubServerAddr = "https://index.docker.io/v1/"
)

// normalizeHost turns a registry host or a config.json key ("https://host",
// "http://host/v1/") into the form lookups compare: lowercase host[:port],
// with Docker Hub's aliases folded into "docker.io".
func normalizeHost(s string) string {
	if _, rest, ok := strings.Cut(s, "://"); ok {
		s = rest
	}
	s, _, _ = strings.Cut(s, "/")
	s = strings.ToLower(strings.TrimSpace(s))
	switch s {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return hubHost
	}
	return s
}
