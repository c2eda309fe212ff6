package testimage

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestImageDigestStablePerOptions(t *testing.T) {
	t.Parallel()
	digest := func(opts ...Option) string {
		d, err := Image(t, opts...).Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d.String()
	}
	plain := digest()
	if again := digest(); again != plain {
		t.Errorf("same options, different digests: %s vs %s", plain, again)
	}
	labelled := digest(WithLabel("build", "1"))
	if labelled == plain {
		t.Errorf("WithLabel did not change the digest")
	}
	if again := digest(WithLabel("build", "1")); again != labelled {
		t.Errorf("same label, different digests: %s vs %s", labelled, again)
	}
	if digest(WithLabel("build", "2")) == labelled {
		t.Errorf("different label values gave the same digest")
	}
	if digest(WithEnv("A", "1"), WithEnv("B", "2")) != digest(WithEnv("B", "2"), WithEnv("A", "1")) {
		t.Errorf("env order changed the digest")
	}
}

func TestImageShape(t *testing.T) {
	t.Parallel()
	img := Image(t, WithEnv("GREETING", "hi"), WithLabel("k", "v"))
	mt, err := img.MediaType()
	if err != nil || mt != types.DockerManifestSchema2 {
		t.Errorf("manifest media type = %q, %v; want %q", mt, err, types.DockerManifestSchema2)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := cf.Config.Entrypoint; len(got) != 1 || got[0] != AppPath {
		t.Errorf("entrypoint = %q, want [%s]", got, AppPath)
	}
	if cf.OS != "linux" || cf.Config.Labels["k"] != "v" || len(cf.Config.Env) != 1 || cf.Config.Env[0] != "GREETING=hi" {
		t.Errorf("config = os %q labels %v env %q", cf.OS, cf.Config.Labels, cf.Config.Env)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %d, %v; want 1", len(layers), err)
	}
	if lmt, _ := layers[0].MediaType(); lmt != types.DockerLayer {
		t.Errorf("layer media type = %q, want %q", lmt, types.DockerLayer)
	}
}

func TestRegistryRequiresAuth(t *testing.T) {
	t.Parallel()
	reg := StartRegistry(t, "alice", "s3cret")
	img := Image(t, WithLabel("test", t.Name()))
	digest := reg.Push(t, "team/web", "1.0", img)
	if want, _ := img.Digest(); digest != want.String() {
		t.Errorf("Push returned %s, want %s", digest, want)
	}

	ref, err := name.ParseReference(reg.Host()+"/team/web:1.0", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		auth       authn.Authenticator
		wantStatus int // 0: success
	}{
		{"anonymous", authn.Anonymous, http.StatusUnauthorized},
		{"wrong password", &authn.Basic{Username: "alice", Password: "nope"}, http.StatusUnauthorized},
		{"wrong user", &authn.Basic{Username: "bob", Password: "s3cret"}, http.StatusUnauthorized},
		{"right credentials", &authn.Basic{Username: "alice", Password: "s3cret"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			desc, err := remote.Get(ref, remote.WithAuth(tt.auth))
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("pull: %v", err)
				}
				if desc.Digest.String() != digest {
					t.Errorf("pulled %s, want %s", desc.Digest, digest)
				}
				return
			}
			var terr *transport.Error
			if !errors.As(err, &terr) || terr.StatusCode != tt.wantStatus {
				t.Fatalf("pull error = %v, want HTTP %d", err, tt.wantStatus)
			}
			// Pushing must be refused the same way.
			err = remote.Write(ref, img, remote.WithAuth(tt.auth))
			if !errors.As(err, &terr) || terr.StatusCode != tt.wantStatus {
				t.Fatalf("push error = %v, want HTTP %d", err, tt.wantStatus)
			}
		})
	}

	var anonymous, refused int
	for _, r := range reg.Requests() {
		if !r.Authenticated {
			anonymous++
			if r.Status == http.StatusUnauthorized {
				refused++
			}
		}
	}
	if anonymous == 0 || anonymous != refused {
		t.Errorf("unauthenticated requests: %d, refused: %d; want all refused", anonymous, refused)
	}
}

func TestRegistryChallenge(t *testing.T) {
	t.Parallel()
	reg := StartRegistry(t, "u", "p")
	resp, err := http.Get("http://" + reg.Host() + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("status = %d, want 401", resp.StatusCode)
	}
	if got, want := resp.Header.Get("WWW-Authenticate"), `Basic realm="tentacle-test"`; got != want {
		t.Errorf("WWW-Authenticate = %q, want %q", got, want)
	}
}

func TestAppOutput(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("the test program is built for linux")
	}
	cmd := exec.Command(BuildApp(t))
	cmd.Env = []string{"TESTAPP_LINES=3", "TESTAPP_INTERVAL=1ms", "TESTAPP_MESSAGE=hi",
		"TESTAPP_PRINT_ENV=COLOR,MISSING", "COLOR=blue", "TESTAPP_STDERR=1", "TESTAPP_EXIT=3"}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("run = %v, want exit code 3", err)
	}
	if want := "env COLOR=blue\nenv MISSING=\nline 1 hi\nline 2 hi\nline 3 hi\n"; stdout.String() != want {
		t.Errorf("stdout = %q, want %q", stdout.String(), want)
	}
	if want := "stderr 1\nstderr 3\n"; stderr.String() != want {
		t.Errorf("stderr = %q, want %q", stderr.String(), want)
	}
}

func TestAppStopsOnSIGTERM(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("the test program is built for linux")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	cmd := exec.Command(BuildApp(t))
	cmd.Env = []string{"TESTAPP_LINES=1", "TESTAPP_LISTEN=" + addr}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := bufio.NewReader(stdout)
	if line, err := out.ReadString('\n'); err != nil || line != "line 1 \n" {
		t.Fatalf("first line = %q, %v", line, err)
	}
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok" {
		t.Errorf("GET = %d %q, want 200 ok", resp.StatusCode, body)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(out)
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v, want 0", err)
	}
	if string(rest) != "stopping\n" {
		t.Errorf("output after SIGTERM = %q, want %q", rest, "stopping\n")
	}
}

func TestRegistryStallBlobs(t *testing.T) {
	t.Parallel()
	reg := StartRegistry(t, "alice", "s3cret")
	img := Image(t, WithLabel("test", t.Name()))
	reg.Push(t, "team/web", "1.0", img)
	cfg, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	stalled, release := reg.StallBlobs(t)

	req, _ := http.NewRequest(http.MethodGet, "http://"+reg.Host()+"/v2/team/web/blobs/"+cfg.String(), nil)
	req.SetBasicAuth("alice", "s3cret")
	done := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	if p := <-stalled; !strings.HasSuffix(p, "/blobs/"+cfg.String()) {
		t.Errorf("stalled path = %s, want the config blob", p)
	}
	select {
	case code := <-done:
		t.Fatalf("blob download finished (%d) while stalled", code)
	default:
	}
	release()
	if code := <-done; code != http.StatusOK {
		t.Errorf("blob download after release: status %d, want 200", code)
	}
}
