package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/tentacle-deploy/tentacle/agent/creds"
	"github.com/tentacle-deploy/tentacle/internal/spec"
)

// A pull stream as Docker 20.10 sends it, trimmed.
const pullStream = `{"status":"Pulling from team/web","id":"1.0"}
{"status":"Pulling fs layer","progressDetail":{},"id":"aaaa"}
{"status":"Pulling fs layer","progressDetail":{},"id":"bbbb"}
{"status":"Downloading","progressDetail":{"current":69402,"total":4951509},"id":"aaaa"}
{"status":"Already exists","progressDetail":{},"id":"bbbb"}
{"status":"Download complete","progressDetail":{},"id":"aaaa"}
{"status":"Extracting","progressDetail":{"current":65536,"total":4951509},"id":"aaaa"}
{"status":"Pull complete","progressDetail":{},"id":"aaaa"}
{"status":"Digest: sha256:48b522f84821b7195f8f8597b0feb90531e7a49c284c4054f1b143c8d6cbfbc2"}
{"status":"Status: Downloaded newer image for reg/team/web:1.0"}
`

func TestReadPullStream(t *testing.T) {
	t.Parallel()
	d := New(nil, nil, nil)
	d.progressEvery = time.Hour // only layer completions report
	var got []string
	progress := func(p Progress) {
		got = append(got, fmt.Sprintf("%s: %s [%d/%d]", p.Phase, p.Message, p.Bytes, p.Total))
	}
	watchdog := time.NewTimer(time.Hour)
	defer watchdog.Stop()
	if err := d.readPullStream(strings.NewReader(pullStream), watchdog, progress, "reg/team/web:1.0"); err != nil {
		t.Fatalf("readPullStream: %v", err)
	}
	want := []string{
		// The first layer message reports, then one per finished layer.
		"pulling: reg/team/web:1.0: 0/1 layers done [0/0]",
		"pulling: reg/team/web:1.0: 1/2 layers done, 69.4 kB of 5.0 MB downloaded [69402/4951509]",
		"pulling: reg/team/web:1.0: 2/2 layers done, 5.0 MB of 5.0 MB downloaded [4951509/4951509]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("progress =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestReadPullStreamError(t *testing.T) {
	t.Parallel()
	stream := `{"status":"Pulling fs layer","progressDetail":{},"id":"aaaa"}
{"status":"Retrying in 5 seconds","progressDetail":{},"id":"aaaa"}
{"errorDetail":{"message":"error pulling image configuration: download failed after attempts=6: unknown blob"},"error":"error pulling image configuration: download failed after attempts=6: unknown blob"}
`
	d := New(nil, nil, nil)
	watchdog := time.NewTimer(time.Hour)
	defer watchdog.Stop()
	err := d.readPullStream(strings.NewReader(stream), watchdog, func(Progress) {}, "r")
	var se *streamError
	if !errors.As(err, &se) || se.Message != "error pulling image configuration: download failed after attempts=6: unknown blob" {
		t.Fatalf("error = %#v, want the stream's error", err)
	}
	// Old engines send only the "error" string.
	err = d.readPullStream(strings.NewReader(`{"error":"boom"}`), watchdog, func(Progress) {}, "r")
	if !errors.As(err, &se) || se.Message != "boom" {
		t.Fatalf("error = %#v, want boom", err)
	}
}

// stallingAPI is an engine whose pulls never make progress.
type stallingAPI struct {
	client.APIClient
	blockRequest bool // block before answering, rather than in the stream
}

func (s stallingAPI) ImagePull(ctx context.Context, _ string, _ image.PullOptions) (io.ReadCloser, error) {
	if s.blockRequest {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	r, w := io.Pipe()
	go func() {
		io.WriteString(w, `{"status":"Pulling from team/web","id":"1.0"}`+"\n")
		<-ctx.Done()
		w.CloseWithError(ctx.Err())
	}()
	return r, nil
}

func TestPullInactivityWatchdog(t *testing.T) {
	t.Parallel()
	store, _ := creds.New(nil, "")
	task := Task{ID: "t", Application: "web", Repository: "reg.example.com/team/web", Tag: "1.0"}
	for _, blockRequest := range []bool{false, true} {
		d := New(stallingAPI{blockRequest: blockRequest}, store, nil)
		d.pullInactivity = 200 * time.Millisecond
		start := time.Now()
		_, err := d.Deploy(context.Background(), task, nil, nil)
		want := "pull reg.example.com/team/web:1.0: no progress from the engine for 200ms: is registry reg.example.com reachable from this host?"
		if KindOf(err) != FailureRegistryUnreachable || err.Error() != want {
			t.Errorf("blockRequest=%v: error = %v (kind %q), want %q", blockRequest, err, KindOf(err), want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("blockRequest=%v: watchdog fired after %s", blockRequest, d)
		}
	}

	// Cancellation is the caller's doing, not a stalled registry.
	d := New(stallingAPI{}, store, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := d.Deploy(ctx, task, nil, nil)
	if KindOf(err) != FailureAgent || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled pull: error = %v (kind %q), want agent, DeadlineExceeded", err, KindOf(err))
	}
}

func TestProbeKind(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want FailureKind
	}{
		{"ok", nil, ""},
		{"401", &transport.Error{StatusCode: http.StatusUnauthorized}, FailureImageUnauthorized},
		{"403 denied", &transport.Error{StatusCode: http.StatusForbidden, Errors: []transport.Diagnostic{{Code: transport.DeniedErrorCode}}}, FailureImageUnauthorized},
		{"code beats status", &transport.Error{StatusCode: http.StatusBadRequest, Errors: []transport.Diagnostic{{Code: transport.UnauthorizedErrorCode}}}, FailureImageUnauthorized},
		{"404 without body", &transport.Error{StatusCode: http.StatusNotFound}, FailureImageNotFound},
		{"manifest unknown", &transport.Error{StatusCode: http.StatusNotFound, Errors: []transport.Diagnostic{{Code: transport.ManifestUnknownErrorCode}}}, FailureImageNotFound},
		{"name unknown", &transport.Error{StatusCode: http.StatusNotFound, Errors: []transport.Diagnostic{{Code: transport.NameUnknownErrorCode}}}, FailureImageNotFound},
		{"500", &transport.Error{StatusCode: http.StatusInternalServerError}, ""},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, FailureRegistryUnreachable},
		{"dns", &net.DNSError{Err: "no such host", Name: "reg", IsNotFound: true}, FailureRegistryUnreachable},
		{"timeout", context.DeadlineExceeded, FailureRegistryUnreachable},
		{"other", errors.New("something else"), ""},
	}
	for _, tt := range tests {
		if got := probeKind(tt.err); got != tt.want {
			t.Errorf("%s: probeKind(%v) = %q, want %q", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestRepoDigests(t *testing.T) {
	t.Parallel()
	const a, b = "sha256:aaaa", "sha256:bbbb"
	hub, _ := spec.ParseRepository("nginx")
	private, _ := spec.ParseRepository("reg.example.com:5000/team/web")
	entries := []string{"nginx@" + b, "docker.io/library/nginx@" + a, "other/nginx@sha256:cccc",
		"reg.example.com:5000/team/web@" + a, "reg.example.com/team/web@sha256:dddd", "garbage"}
	if got := repoDigests(entries, hub); strings.Join(got, ",") != a+","+b {
		t.Errorf("hub digests = %v, want [%s %s]", got, a, b)
	}
	if got := repoDigests(entries, private); strings.Join(got, ",") != a {
		t.Errorf("private digests = %v, want [%s]", got, a)
	}
}

func TestKindOf(t *testing.T) {
	t.Parallel()
	f := fail(FailureImageNotFound, "x: %w", io.EOF)
	if KindOf(nil) != "" || KindOf(io.EOF) != FailureAgent || KindOf(f) != FailureImageNotFound {
		t.Errorf("KindOf: nil %q, plain %q, failure %q", KindOf(nil), KindOf(io.EOF), KindOf(f))
	}
	if wrapped := errors.Join(errors.New("ctx"), f); KindOf(wrapped) != FailureImageNotFound || !errors.Is(wrapped, io.EOF) {
		t.Errorf("KindOf(wrapped) = %q", KindOf(wrapped))
	}
}

func TestTaskValidation(t *testing.T) {
	t.Parallel()
	d := New(nil, nil, nil)
	task := Task{ID: "t9", Application: "Web", Repository: "reg.example.com/team/web:1.0", Digest: "sha256:zz",
		Spec: spec.RunSpec{RestartPolicy: "sometimes"}}
	_, err := d.Deploy(context.Background(), task, nil, nil)
	want := `task t9: application: invalid name "Web": use 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit
image repository "reg.example.com/team/web:1.0" contains a tag: give the tag to the release instead
image digest "sha256:zz" is invalid: use sha256: followed by 64 lowercase hex digits
restart_policy: "sometimes": use no, always, unless-stopped or on-failure`
	if KindOf(err) != FailureAgent || err.Error() != want {
		t.Errorf("error =\n%v\nwant\n%s", err, want)
	}
}
