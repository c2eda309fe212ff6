package creds

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestNewRejects(t *testing.T) {
	t.Parallel()
	abs := filepath.Join(t.TempDir(), "pw")
	tests := []struct {
		name    string
		entries []Entry
		want    string
	}{
		{"empty registry", []Entry{{Username: "u", Password: "p"}},
			`registries[0].registry: is empty: give the registry host as in image references, e.g. "registry.example.com:5000"`},
		{"scheme", []Entry{{Registry: "https://reg.example.com/v2/", Username: "u", Password: "p"}},
			`registries[0].registry: "https://reg.example.com/v2/" has a scheme: give the host only, e.g. "reg.example.com"`},
		{"path", []Entry{{Registry: "reg.example.com:5000/team", Username: "u", Password: "p"}},
			`registries[0].registry: "reg.example.com:5000/team" has a path: give the host only, e.g. "reg.example.com:5000" (the credentials apply to every repository on it)`},
		{"space", []Entry{{Registry: "reg example", Username: "u", Password: "p"}},
			`registries[0].registry: "reg example" is not a host name: give the host only, e.g. registry.example.com:5000`},
		{"no username", []Entry{{Registry: "r", Password: "p"}},
			`registries[0].username: is empty: set the user the agent logs in to the registry as`},
		{"no password", []Entry{{Registry: "r", Username: "u"}},
			`registries[0].password: neither password nor password_file is set: set one of them`},
		{"both passwords", []Entry{{Registry: "r", Username: "u", Password: "p", PasswordFile: abs}},
			`registries[0].password_file: both password and password_file are set: keep only one`},
		{"relative file", []Entry{{Registry: "r", Username: "u", PasswordFile: "secrets/pw"}},
			`registries[0].password_file: "secrets/pw" is relative: give an absolute path`},
		{"duplicate hub alias", []Entry{{Registry: "docker.io", Username: "u", Password: "p"}, {Registry: "index.docker.io", Username: "v", Password: "q"}},
			`registries[1].registry: "docker.io" is already configured by registries[0]: keep one entry per registry`},
		{"all problems reported", []Entry{{Registry: "ok", Username: "u", Password: "p"}, {Registry: "a", Password: "p"}, {Username: "u"}},
			"registries[1].username: is empty: set the user the agent logs in to the registry as\n" +
				`registries[2].registry: is empty: give the registry host as in image references, e.g. "registry.example.com:5000"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tt.entries, "")
			if err == nil || err.Error() != tt.want {
				t.Errorf("New() error =\n%v\nwant\n%s", err, tt.want)
			}
		})
	}
}

func TestLookupAgentEntries(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The docker config knows every host too: agent entries must win.
	dockerCfg := writeFile("config.json", `{"auths":{
		"reg.example.com:5000":{"auth":"`+b64("docker:fromdocker")+`"},
		"https://index.docker.io/v1/":{"auth":"`+b64("docker:fromdocker")+`"}}}`)
	s, err := New([]Entry{
		{Registry: "reg.example.com:5000", Username: "alice", Password: "inline"},
		{Registry: "index.docker.io", Username: "hubuser", PasswordFile: writeFile("hub", "fromfile\n")},
		{Registry: "crlf.example.com", Username: "bob", PasswordFile: writeFile("crlf", "s3cret \r\n")},
		{Registry: "missing.example.com", Username: "carol", PasswordFile: filepath.Join(dir, "nope")},
		{Registry: "empty.example.com", Username: "dave", PasswordFile: writeFile("empty", "\n")},
	}, dockerCfg)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host    string
		want    Auth
		wantOK  bool
		wantErr string
	}{
		{host: "reg.example.com:5000", want: Auth{Username: "alice", Password: "inline"}, wantOK: true},
		{host: "REG.example.com:5000", want: Auth{Username: "alice", Password: "inline"}, wantOK: true},
		{host: "docker.io", want: Auth{Username: "hubuser", Password: "fromfile"}, wantOK: true},
		{host: "registry-1.docker.io", want: Auth{Username: "hubuser", Password: "fromfile"}, wantOK: true},
		{host: "crlf.example.com", want: Auth{Username: "bob", Password: "s3cret "}, wantOK: true},
		{host: "reg.example.com", wantOK: false}, // another port is another registry
		{host: "missing.example.com", wantErr: "credentials for missing.example.com: read password_file: open " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{host: "empty.example.com", wantErr: "credentials for empty.example.com: password_file " + filepath.Join(dir, "empty") + " is empty"},
	}
	for _, tt := range tests {
		got, ok, err := s.Lookup(tt.host)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("Lookup(%q) error = %v, want %q", tt.host, err, tt.wantErr)
			}
			continue
		}
		if err != nil || ok != tt.wantOK || got != tt.want {
			t.Errorf("Lookup(%q) = %v, %v, %v; want %v, %v", tt.host, got, ok, err, tt.want, tt.wantOK)
		}
	}
}

func TestLookupDockerConfigAuths(t *testing.T) {
	t.Parallel()
	cfg := `{
		"auths": {
			"plain.example.com": {"auth": "` + b64("alice:pa:ss") + `"},
			"https://url.example.com": {"auth": "` + b64("bob:pw") + `"},
			"http://insecure.example.com:5000/v2/": {"username": "carol", "password": "pw3"},
			"https://index.docker.io/v1/": {"auth": "` + b64("hub:hubpw") + `"},
			"token.example.com": {"identitytoken": "tok"},
			"unpadded.example.com": {"auth": "` + strings.TrimRight(b64("erin:p"), "=") + `"},
			"empty.example.com": {},
			"bad.example.com": {"auth": "%%%"},
			"nocolon.example.com": {"auth": "` + b64("nocolon") + `"}
		}
	}`
	s := storeWithDockerConfig(t, cfg)
	tests := []struct {
		host    string
		want    Auth
		wantOK  bool
		wantErr string
	}{
		{host: "plain.example.com", want: Auth{Username: "alice", Password: "pa:ss"}, wantOK: true},
		{host: "url.example.com", want: Auth{Username: "bob", Password: "pw"}, wantOK: true},
		{host: "insecure.example.com:5000", want: Auth{Username: "carol", Password: "pw3"}, wantOK: true},
		{host: "docker.io", want: Auth{Username: "hub", Password: "hubpw"}, wantOK: true},
		{host: "index.docker.io", want: Auth{Username: "hub", Password: "hubpw"}, wantOK: true},
		{host: "token.example.com", want: Auth{IdentityToken: "tok"}, wantOK: true},
		{host: "unpadded.example.com", want: Auth{Username: "erin", Password: "p"}, wantOK: true},
		{host: "empty.example.com", wantOK: false},
		{host: "other.example.com", wantOK: false},
		{host: "bad.example.com", wantErr: `auths["bad.example.com"].auth: not valid base64: it must be base64(username:password)`},
		{host: "nocolon.example.com", wantErr: `auths["nocolon.example.com"].auth: does not decode to username:password`},
	}
	for _, tt := range tests {
		got, ok, err := s.Lookup(tt.host)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("Lookup(%q) error = %v, want %q", tt.host, err, tt.wantErr)
			}
			continue
		}
		if err != nil || ok != tt.wantOK || got != tt.want {
			t.Errorf("Lookup(%q) = %v, %v, %v; want %v, %v", tt.host, got, ok, err, tt.want, tt.wantOK)
		}
	}
}

func TestLookupDockerConfigFileProblems(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing, err := New(nil, filepath.Join(dir, "absent.json"))
	if err != nil {
		t.Fatal(err)
	}
	if a, ok, err := missing.Lookup("r.example.com"); ok || err != nil {
		t.Errorf("missing config: Lookup = %v, %v, %v; want nothing, no error", a, ok, err)
	}
	none, _ := New(nil, "")
	if _, ok, err := none.Lookup("r.example.com"); ok || err != nil {
		t.Errorf("no config: Lookup = %v, %v; want nothing, no error", ok, err)
	}

	// The syntax error must not quote the file, which holds secrets.
	p := filepath.Join(dir, "broken.json")
	os.WriteFile(p, []byte(`{"auths":{"r":{"auth":"c2VjcmV0"}} topsecret`), 0o600)
	broken, _ := New(nil, p)
	_, _, err = broken.Lookup("r")
	if want := "docker config " + p + ": not valid JSON at byte 36"; err == nil || err.Error() != want {
		t.Errorf("broken config: error = %v, want %q", err, want)
	}
}

func TestRedaction(t *testing.T) {
	t.Parallel()
	a := Auth{Username: "alice", Password: "hunter2", IdentityToken: "tok-xyz"}
	e := Entry{Registry: "r", Username: "alice", Password: "hunter2"}
	var buf bytes.Buffer
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zap.DebugLevel))
	log.Info("lookup", zap.Any("auth", a), zap.Object("auth_obj", a), zap.Any("entry", e), zap.Any("entries", []Entry{e}))
	outputs := []string{
		fmt.Sprint(a), fmt.Sprintf("%v %+v %#v %s", a, a, a, a),
		fmt.Sprint(e), fmt.Sprintf("%v %+v %#v", e, e, e),
		fmt.Sprintf("%v", []Auth{a}), fmt.Sprintf("%+v", struct{ A Auth }{a}),
		string(must(json.Marshal(struct{ E []Entry }{[]Entry{e}}))), string(must(json.Marshal(a))),
		buf.String(),
	}
	for _, out := range outputs {
		if strings.Contains(out, "hunter2") || strings.Contains(out, "tok-xyz") {
			t.Errorf("secret printed: %s", out)
		}
	}
	if !strings.Contains(outputs[0], `"alice"`) || !strings.Contains(outputs[0], "<redacted>") {
		t.Errorf("String() = %s, want the username and <redacted>", outputs[0])
	}
}

func storeWithDockerConfig(t *testing.T, content string) *Store {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := New(nil, p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
