package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tentacle-deploy/tentacle/internal/testimage"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

func (f *fakeAdmin) SetVariable(ctx context.Context, req *tentaclev1.SetVariableRequest) (*tentaclev1.SetVariableResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	v := proto.Clone(req.GetVariable()).(*tentaclev1.Variable)
	if v.GetSensitive() {
		v.Value = ""
	}
	return &tentaclev1.SetVariableResponse{Variable: v}, nil
}

func (f *fakeAdmin) ListVariables(ctx context.Context, req *tentaclev1.ListVariablesRequest) (*tentaclev1.ListVariablesResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &tentaclev1.ListVariablesResponse{Variables: f.variables}, nil
}

func (f *fakeAdmin) DeleteVariable(ctx context.Context, req *tentaclev1.DeleteVariableRequest) (*tentaclev1.DeleteVariableResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &tentaclev1.DeleteVariableResponse{}, nil
}

func TestVarSet(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	r := h.run(t, "var", "set", "web", "LOG_LEVEL", "debug", "--env", "dev", "--role", "api")
	wantCode(t, r, 0)
	if r.stdout != "set variable LOG_LEVEL of web (env dev, role api)\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
	want := &tentaclev1.SetVariableRequest{Variable: &tentaclev1.Variable{Application: "web", Name: "LOG_LEVEL", Value: "debug",
		Scope: &tentaclev1.VariableScope{Environment: "dev", Role: "api"}}}
	if got := h.fake.only(t); !proto.Equal(got, want) {
		t.Errorf("request = %v, want %v", got, want)
	}
}

func TestVarSetSensitiveReadsStdin(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-secret"
	h := newHarness(t, &fakeAdmin{})
	r := h.runStdin(t, context.Background(), h.env(), secret+"\n", "var", "set", "web", "DB_PASSWORD", "--sensitive", "--target", "web-1")
	wantCode(t, r, 0)
	if r.stdout != "set sensitive variable DB_PASSWORD of web (target web-1)\n" || strings.Contains(r.stdout+r.stderr, secret) {
		t.Errorf("stdout = %q, stderr = %q", r.stdout, r.stderr)
	}
	got := h.fake.only(t).(*tentaclev1.SetVariableRequest).GetVariable()
	if got.GetValue() != secret || !got.GetSensitive() || got.GetScope().GetTarget() != "web-1" {
		t.Errorf("request = %v: want the value from stdin without its newline", got)
	}

	// On the command line it is taken, with a warning.
	h = newHarness(t, &fakeAdmin{})
	r = h.run(t, "var", "set", "web", "DB_PASSWORD", secret, "--sensitive")
	wantCode(t, r, 0)
	if r.stderr != "warning: a sensitive VALUE on the command line stays in your shell history and shows in ps: leave it out and pipe it in on stdin\n" {
		t.Errorf("stderr = %q", r.stderr)
	}

	// --value-stdin reads a plain value the same way.
	h = newHarness(t, &fakeAdmin{})
	r = h.runStdin(t, context.Background(), h.env(), "line1\nline2\r\n", "var", "set", "web", "MOTD", "--value-stdin")
	wantCode(t, r, 0)
	if v := h.fake.only(t).(*tentaclev1.SetVariableRequest).GetVariable().GetValue(); v != "line1\nline2" {
		t.Errorf("value = %q", v)
	}

	help := h.run(t, "var", "set", "--help")
	if !strings.Contains(help.stdout, "A sensitive value given without VALUE is read from\nstdin, so that it stays out of your shell history") {
		t.Errorf("help does not say why sensitive values come from stdin:\n%s", help.stdout)
	}
}

func TestVarRejectsBadInputWithoutCallingTheServer(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	for _, tc := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", []string{"var", "set", "web", "1BAD", "x"}, `NAME: invalid variable name "1BAD": use letters, digits and _, not starting with a digit`},
		{"", []string{"var", "set", "web", "X", "x", "--env", "Prod"}, `--env: invalid name "Prod": use 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit`},
		{"", []string{"var", "set", "web", "X"}, "missing VALUE: give it, or pass --value-stdin to read it from stdin"},
		{"", []string{"var", "set", "web", "X", "--sensitive"}, "no value on stdin: pipe the sensitive value in, e.g. tentaclectl var set APP NAME --sensitive < file"},
		{"v", []string{"var", "set", "web", "X", "x", "--value-stdin"}, "VALUE given with --value-stdin: give one or the other"},
		{"", []string{"var", "set", "web", "X", "x", "extra"}, `unexpected argument "extra"`},
		{"", []string{"var", "delete", "web"}, "missing NAME"},
		{"", []string{"var", "list", "Web"}, `APP: invalid name "Web": use 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit`},
	} {
		r := h.runStdin(t, context.Background(), h.env(), tc.stdin, tc.args...)
		wantCode(t, r, 2)
		if first := strings.SplitN(r.stderr, "\n", 2)[0]; first != "tentaclectl: "+tc.want {
			t.Errorf("%v: stderr %q, want %q", tc.args, first, "tentaclectl: "+tc.want)
		}
	}
	if n := h.fake.count(); n != 0 {
		t.Errorf("server got %d requests for bad input", n)
	}
}

func TestVarListAndDelete(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{variables: []*tentaclev1.Variable{
		{Application: "web", Name: "DB_PASSWORD", Sensitive: true, Scope: &tentaclev1.VariableScope{Environment: "prod"}, UpdatedAt: timestamppb.New(t0), UpdatedBy: "alice"},
		{Application: "web", Name: "LOG_LEVEL", Value: "info", Scope: &tentaclev1.VariableScope{}, UpdatedAt: timestamppb.New(t0), UpdatedBy: "bob"},
	}})
	r := h.run(t, "var", "list", "web")
	wantCode(t, r, 0)
	want := "NAME         VALUE        ENV   ROLE  TARGET  UPDATED              BY\n" +
		"DB_PASSWORD  (sensitive)  prod  -     -       2026-01-02 03:04:05  alice\n" +
		"LOG_LEVEL    info         -     -     -       2026-01-02 03:04:05  bob\n"
	if r.stdout != want {
		t.Errorf("table:\n%s\nwant:\n%s", r.stdout, want)
	}
	r = h.run(t, "var", "list", "web", "-o", "json")
	wantCode(t, r, 0)
	var doc struct {
		Variables []struct {
			Name      string `json:"name"`
			Value     string `json:"value"`
			Sensitive bool   `json:"sensitive"`
		} `json:"variables"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || len(doc.Variables) != 2 || !doc.Variables[0].Sensitive || doc.Variables[0].Value != "" {
		t.Errorf("json %s: %v", r.stdout, err)
	}

	h = newHarness(t, &fakeAdmin{})
	r = h.run(t, "var", "delete", "web", "LOG_LEVEL", "--env", "dev")
	wantCode(t, r, 0)
	if r.stdout != "deleted variable LOG_LEVEL of web (env dev)\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
	wantReq := &tentaclev1.DeleteVariableRequest{Application: "web", Name: "LOG_LEVEL", Scope: &tentaclev1.VariableScope{Environment: "dev"}}
	if got := h.fake.only(t); !proto.Equal(got, wantReq) {
		t.Errorf("request = %v, want %v", got, wantReq)
	}
}

// dockerConfig writes a docker config.json dir with credentials for host
// (none when user is empty) and points DOCKER_CONFIG at it.
func dockerConfig(t *testing.T, host, user, pass string) {
	t.Helper()
	dir := t.TempDir()
	cfg := map[string]any{"auths": map[string]any{}}
	if user != "" {
		cfg["auths"] = map[string]any{host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))}}
	}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
}

// Not parallel: DOCKER_CONFIG is process-wide, as docker's keychain reads it.
func TestReleaseCreateResolvesTheDigestWithTheCallersCredentials(t *testing.T) {
	reg := testimage.StartRegistry(t, "ci", "pa55")
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	digest := reg.Push(t, "team/web", "1.4.2", img)
	apps := []*tentaclev1.Application{{Name: "web", ImageRepository: reg.Host() + "/team/web"}}
	ref := reg.Host() + "/team/web:1.4.2"

	t.Run("with credentials", func(t *testing.T) {
		dockerConfig(t, reg.Host(), "ci", "pa55")
		h := newHarness(t, &fakeAdmin{apps: apps})
		r := h.run(t, "release", "create", "--app", "web", "--tag", "1.4.2")
		wantCode(t, r, 0)
		if r.stderr != "" {
			t.Errorf("stderr = %q", r.stderr)
		}
		if r.stdout != "created release 1.4.2 of web: r.io/team/web:1.4.2@"+digest+"\n" {
			t.Errorf("stdout = %q", r.stdout)
		}
		if got := lastCreateRelease(t, h).GetImageDigest(); got != digest {
			t.Errorf("image_digest = %q, want %q", got, digest)
		}
	})
	t.Run("without credentials", func(t *testing.T) {
		dockerConfig(t, reg.Host(), "", "")
		h := newHarness(t, &fakeAdmin{apps: apps})
		r := h.run(t, "release", "create", "--app", "web", "--tag", "1.4.2")
		wantCode(t, r, 0)
		if !strings.HasPrefix(r.stderr, "warning: cannot resolve "+ref+" to a digest: ") || !strings.Contains(r.stderr, "unauthorized (HTTP 401): docker's config.json has no accepted credentials for "+reg.Host()+"; run `docker login "+reg.Host()+"`\n") ||
			!strings.Contains(r.stderr, "\nwarning: the release is created without one; the first pull pins the digest the tag points to then") {
			t.Errorf("stderr = %q", r.stderr)
		}
		if got := lastCreateRelease(t, h).GetImageDigest(); got != "" {
			t.Errorf("image_digest = %q, want none", got)
		}
	})
	t.Run("unreachable registry", func(t *testing.T) {
		dockerConfig(t, "127.0.0.1:1", "", "")
		h := newHarness(t, &fakeAdmin{apps: []*tentaclev1.Application{{Name: "web", ImageRepository: "127.0.0.1:1/team/web"}}})
		r := h.run(t, "release", "create", "--app", "web", "--tag", "1.4.2")
		wantCode(t, r, 0)
		if !strings.HasPrefix(r.stderr, "warning: cannot resolve 127.0.0.1:1/team/web:1.4.2 to a digest: ") || !strings.Contains(r.stderr, "connection refused") {
			t.Errorf("stderr = %q", r.stderr)
		}
	})
	t.Run("unknown tag", func(t *testing.T) {
		dockerConfig(t, reg.Host(), "ci", "pa55")
		h := newHarness(t, &fakeAdmin{apps: apps})
		r := h.run(t, "release", "create", "--app", "web", "--tag", "9.9")
		wantCode(t, r, 0)
		if !strings.Contains(r.stderr, "to a digest: not found (HTTP 404): "+reg.Host()+"/team/web has no tag 9.9\n") {
			t.Errorf("stderr = %q", r.stderr)
		}
	})
	t.Run("--no-resolve", func(t *testing.T) {
		dockerConfig(t, reg.Host(), "ci", "pa55")
		before := len(reg.Requests())
		h := newHarness(t, &fakeAdmin{apps: apps})
		r := h.run(t, "release", "create", "--app", "web", "--tag", "1.4.2", "--no-resolve")
		wantCode(t, r, 0)
		if got := h.fake.only(t).(*tentaclev1.CreateReleaseRequest).GetImageDigest(); got != "" || len(reg.Requests()) != before {
			t.Errorf("image_digest = %q, registry asked %d times: --no-resolve must not ask", got, len(reg.Requests())-before)
		}
	})
}

func lastCreateRelease(t *testing.T, h *harness) *tentaclev1.CreateReleaseRequest {
	t.Helper()
	h.fake.mu.Lock()
	defer h.fake.mu.Unlock()
	req, ok := h.fake.requests[len(h.fake.requests)-1].(*tentaclev1.CreateReleaseRequest)
	if !ok {
		t.Fatalf("last request is %T, want CreateRelease", h.fake.requests[len(h.fake.requests)-1])
	}
	return req
}
