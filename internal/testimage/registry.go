package testimage

import (
	"crypto/subtle"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Realm is the basic-auth realm the test registry announces.
const Realm = "tentacle-test"

// Registry is an in-memory registry on 127.0.0.1 that requires basic auth
// for every request, as a private registry would. Docker treats 127.0.0.0/8
// as insecure by default, so the engine pulls from it over plain HTTP.
type Registry struct {
	srv      *httptest.Server
	username string
	password string

	mu       sync.Mutex
	requests []Request
	stall    chan struct{} // non-nil: blob downloads wait until it is closed
	stalled  chan string   // told the path of each blob download held back
}

// Request is one request the registry answered.
type Request struct {
	Method        string
	Path          string
	Status        int
	Authenticated bool
}

// StartRegistry starts a registry accepting only username/password; it is
// closed when the test ends.
func StartRegistry(t testing.TB, username, password string) *Registry {
	t.Helper()
	r := NewRegistry(username, password)
	t.Cleanup(r.Close)
	return r
}

// NewRegistry is StartRegistry for a program: Close stops it.
func NewRegistry(username, password string) *Registry {
	r := &Registry{username: username, password: password}
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.srv = httptest.NewServer(r.authenticate(inner))
	return r
}

// Close stops the registry.
func (r *Registry) Close() { r.srv.Close() }

func (r *Registry) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		user, pass, ok := req.BasicAuth()
		ok = ok && subtle.ConstantTimeCompare([]byte(user), []byte(r.username)) == 1 &&
			subtle.ConstantTimeCompare([]byte(pass), []byte(r.password)) == 1
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			r.mu.Lock()
			r.requests = append(r.requests, Request{Method: req.Method, Path: req.URL.Path, Status: rec.status, Authenticated: ok})
			r.mu.Unlock()
		}()
		if ok && req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/") {
			r.holdBlob(req)
		}
		if !ok {
			// The registry API's own error shape, so clients report it as
			// UNAUTHORIZED rather than as an unknown failure.
			rec.Header().Set("WWW-Authenticate", `Basic realm="`+Realm+`"`)
			rec.Header().Set("Content-Type", "application/json")
			rec.WriteHeader(http.StatusUnauthorized)
			io.WriteString(rec, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		next.ServeHTTP(rec, req)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// StallBlobs makes blob downloads (GET …/blobs/…) wait, as a registry on a
// dead link would, until release is called or the client gives up. Each
// download held back sends its path on the returned channel (buffered; a
// full channel drops the notice). Pushes are not held back. release is
// also called when the test ends.
func (r *Registry) StallBlobs(t testing.TB) (stalled <-chan string, release func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	stall := make(chan struct{})
	r.stall, r.stalled = stall, make(chan string, 16)
	release = sync.OnceFunc(func() {
		r.mu.Lock()
		if r.stall == stall {
			r.stall = nil
		}
		r.mu.Unlock()
		close(stall)
	})
	t.Cleanup(release)
	return r.stalled, release
}

func (r *Registry) holdBlob(req *http.Request) {
	r.mu.Lock()
	stall, stalled := r.stall, r.stalled
	r.mu.Unlock()
	if stall == nil {
		return
	}
	select {
	case stalled <- req.URL.Path:
	default:
	}
	select {
	case <-stall:
	case <-req.Context().Done():
	}
}

// Host is "127.0.0.1:PORT", the registry part of an image reference.
func (r *Registry) Host() string {
	return strings.TrimPrefix(r.srv.URL, "http://")
}

// Push uploads img as repoPath:tag with the registry's credentials and
// returns the manifest digest, "sha256:…".
func (r *Registry) Push(t testing.TB, repoPath, tag string, img v1.Image) string {
	t.Helper()
	d, err := r.PushImage(repoPath, tag, img)
	if err != nil {
		t.Fatalf("testimage: %v", err)
	}
	return d
}

// PushImage is Push for a program.
func (r *Registry) PushImage(repoPath, tag string, img v1.Image) (string, error) {
	ref, err := name.NewTag(r.Host()+"/"+repoPath+":"+tag, name.Insecure)
	if err != nil {
		return "", fmt.Errorf("push reference: %w", err)
	}
	auth := &authn.Basic{Username: r.username, Password: r.password}
	if err := remote.Write(ref, img, remote.WithAuth(auth)); err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("digest: %w", err)
	}
	return d.String(), nil
}

// Requests returns the requests answered so far, oldest first.
func (r *Registry) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.requests...)
}
