package creds

import (
	"strings"
	"testing"
)

// FuzzDockerConfig feeds arbitrary config.json content and registry hosts
// through the parsing and file lookup (never the helpers: a fuzzer must
// not exec programs). Nothing may panic, errors must not echo the input,
// and host normalization must be stable.
func FuzzDockerConfig(f *testing.F) {
	f.Add([]byte(`{"auths":{"r.example.com":{"auth":"dTpw"}}}`), "r.example.com")
	f.Add([]byte(`{"auths":{"https://index.docker.io/v1/":{"username":"u","password":"p"}},"credsStore":"desktop"}`), "docker.io")
	f.Add([]byte(`{"auths":{"http://h:5000/v2/":{"identitytoken":"t"}},"credHelpers":{"h:5000":"ecr-login"}}`), "h:5000")
	f.Add([]byte(`{"auths":{"x":{"auth":"%%%"}}}`), "X")
	f.Add([]byte(`{"auths":[]}`), "")
	f.Add([]byte(`{"auths":{"x":{"auth":"c2VjcmV0"}} trailing`), "x")
	f.Fuzz(func(t *testing.T, data []byte, host string) {
		h := normalizeHost(host)
		if again := normalizeHost(h); again != h {
			t.Fatalf("normalizeHost not stable: %q -> %q -> %q", host, h, again)
		}
		cfg, err := parseDockerConfig(data)
		if err != nil {
			if len(data) > 8 && strings.Contains(err.Error(), string(data)) {
				t.Fatalf("error quotes the config: %v", err)
			}
			return
		}
		a, ok, err := cfg.fileAuth(h)
		if err != nil {
			return
		}
		if ok && a.Password == "" && a.IdentityToken == "" {
			t.Fatalf("fileAuth reported credentials without a secret: %v", a)
		}
		_ = cfg.helperFor(h)
	})
}
