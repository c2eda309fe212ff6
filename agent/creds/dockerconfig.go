package creds

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"
)

// dockerConfig is the part of docker's config.json that holds credentials.
type dockerConfig struct {
	Auths       map[string]dockerAuth `json:"auths"`
	CredHelpers map[string]string     `json:"credHelpers"`
	CredsStore  string                `json:"credsStore"`
}

type dockerAuth struct {
	Auth          string `json:"auth"` // base64("user:password"), as `docker login` writes it
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
}

func readDockerConfig(path string) (*dockerConfig, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("docker config: %w", err)
	}
	cfg, err := parseDockerConfig(data)
	if err != nil {
		return nil, fmt.Errorf("docker config %s: %w", path, err)
	}
	return cfg, nil
}

func parseDockerConfig(data []byte) (*dockerConfig, error) {
	var cfg dockerConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		// A syntax error quotes the offending character, which may be part
		// of a secret: report only where it is.
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, fmt.Errorf("not valid JSON at byte %d", syn.Offset)
		}
		return nil, fmt.Errorf("not a docker config file: %w", err)
	}
	return &cfg, nil
}

// lookupDocker follows the order: an auths entry holding credentials, then
// credHelpers[host], then credsStore. `docker login` with a credential store
// leaves an empty auths entry behind; such entries fall through to the helpers.
func (s *Store) lookupDocker(cfg *dockerConfig, host string) (Auth, bool, error) {
	a, ok, err := cfg.fileAuth(host)
	if err != nil || ok {
		return a, ok, err
	}
	helper := cfg.helperFor(host)
	if helper == "" {
		return Auth{}, false, nil
	}
	return s.runHelper(helper, serverAddress(host))
}

// fileAuth finds host in auths. Keys may be a bare host or a URL
// ("https://host", "https://index.docker.io/v1/"); an exact key wins over
// one that only normalizes to host, and keys are tried in sorted order so
// the answer does not depend on map iteration.
func (c *dockerConfig) fileAuth(host string) (Auth, bool, error) {
	key, found := "", false
	if _, ok := c.Auths[host]; ok {
		key, found = host, true
	} else {
		for _, k := range sortedKeys(c.Auths) {
			if normalizeHost(k) == host {
				key, found = k, true
				break
			}
		}
	}
	if !found {
		return Auth{}, false, nil
	}
	e := c.Auths[key]
	a := Auth{Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken}
	if e.Auth != "" {
		user, pass, err := decodeAuth(e.Auth)
		if err != nil {
			return Auth{}, false, fmt.Errorf("auths[%q].auth: %w", key, err)
		}
		a.Username, a.Password = user, pass
	}
	if a.Password == "" && a.IdentityToken == "" {
		return Auth{}, false, nil
	}
	return a, true, nil
}

func decodeAuth(s string) (user, pass string, err error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		// Some tools write it without padding.
		if b, err = base64.RawStdEncoding.DecodeString(strings.TrimSpace(s)); err != nil {
			return "", "", errors.New("not valid base64: it must be base64(username:password)")
		}
	}
	user, pass, ok := strings.Cut(string(b), ":")
	if !ok || user == "" {
		return "", "", errors.New("does not decode to username:password")
	}
	return user, pass, nil
}

func (c *dockerConfig) helperFor(host string) string {
	if h, ok := c.CredHelpers[host]; ok {
		return h
	}
	for _, k := range sortedKeys(c.CredHelpers) {
		if normalizeHost(k) == host {
			return c.CredHelpers[k]
		}
	}
	return c.CredsStore
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// serverAddress is the name a credential helper stores a registry under:
// the host, except Docker Hub's historical index URL.
func serverAddress(host string) string {
	if host == hubHost {
		return hubServerAddr
	}
	return host
}

// credentialsNotFound is the message with which the credential helper
// protocol (docker-credential-helpers) signals "no entry": a protocol
// constant compared exactly, not an error text we interpret.
const credentialsNotFound = "credentials not found in native keychain"

// identityTokenUser is the username helpers return for a token credential.
const identityTokenUser = "<token>"

// runHelper runs `docker-credential-<name> get` with the server address on
// stdin, as the docker CLI does.
func (s *Store) runHelper(name, server string) (Auth, bool, error) {
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return Auth{}, false, fmt.Errorf("docker config: credential helper name %q is invalid: give the suffix of a docker-credential-* program on PATH", name)
	}
	prog := "docker-credential-" + name
	ctx, cancel := context.WithTimeout(context.Background(), s.helperTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, "get")
	cmd.Stdin = strings.NewReader(server)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A helper that leaves a child holding its output open must not keep
	// the lookup waiting past its timeout.
	cmd.WaitDelay = time.Second
	switch err := cmd.Run(); {
	case err == nil:
	case errors.Is(err, exec.ErrNotFound):
		return Auth{}, false, fmt.Errorf("credential helper %s for %s is not installed (not found on PATH): install it or remove it from docker's config.json", prog, server)
	case ctx.Err() != nil:
		return Auth{}, false, fmt.Errorf("credential helper %s for %s did not answer within %s", prog, server, s.helperTimeout)
	default:
		if strings.TrimSpace(stdout.String()) == credentialsNotFound {
			return Auth{}, false, nil
		}
		return Auth{}, false, fmt.Errorf("credential helper %s get %s: %w: %s", prog, server, err, helperMessage(stdout.String(), stderr.String()))
	}
	var resp struct {
		Username string `json:"Username"`
		Secret   string `json:"Secret"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &resp); err != nil {
		return Auth{}, false, fmt.Errorf("credential helper %s get %s: answer is not the helper protocol's JSON", prog, server)
	}
	switch {
	case resp.Secret == "":
		return Auth{}, false, nil
	case resp.Username == identityTokenUser:
		return Auth{IdentityToken: resp.Secret}, true, nil
	default:
		return Auth{Username: resp.Username, Password: resp.Secret}, true, nil
	}
}

// helperMessage is what a failed helper said, shortened: helpers report
// their errors on stdout (the protocol) or stderr (crashes).
func helperMessage(stdout, stderr string) string {
	msg := strings.TrimSpace(stdout)
	if msg == "" {
		msg = strings.TrimSpace(stderr)
	}
	if msg == "" {
		return "no message"
	}
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	const max = 200
	if len(msg) > max {
		msg = msg[:max] + "…"
	}
	return msg
}
