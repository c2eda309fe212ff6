// Package testimage builds the images that Docker tests deploy and serves
// them from an in-process registry with basic auth. Images are built in Go
// from the static program in ./testapp, so tests never need the internet or
// a Dockerfile.
//
// It is for tests and for cmd/tentacle-bench: the functions taking a
// testing.TB are thin wrappers of the ones returning errors (Build,
// NewImage, NewRegistry, Registry.PushImage), which a program can use.
// Nothing the product ships imports it.
package testimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// AppPath is where the test program sits inside the image.
const AppPath = "/testapp"

const appPackage = "github.com/tentacle-deploy/tentacle/internal/testimage/testapp"

// layerTime is fixed so that equal options always give equal digests.
var layerTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error

	layerOnce sync.Once
	layer     v1.Layer
	layerErr  error
)

// BuildApp compiles the test program for linux on the host architecture,
// once per test process, and returns the path of the static binary.
func BuildApp(t testing.TB) string {
	t.Helper()
	p, err := Build()
	if err != nil {
		t.Fatalf("testimage: %v", err)
	}
	return p
}

// Build is BuildApp for a program: it needs the go command and the module's
// source (run from within the module).
func Build() (string, error) {
	buildOnce.Do(func() { buildPath, buildErr = buildApp() })
	if buildErr != nil {
		return "", fmt.Errorf("build test program: %w", buildErr)
	}
	return buildPath, nil
}

func buildApp() (string, error) {
	// A stable place rather than a temp dir: the binary outlives any single
	// test, and a per-process temp dir would never be removed. Concurrent
	// test processes each build to their own file and rename it into place.
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "tentacle-testimage")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "testapp-linux-"+runtime.GOARCH)
	tmp, err := os.CreateTemp(dir, "testapp-*.tmp")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())

	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go command is needed to build the test image: %w", err)
	}
	cmd := exec.Command(goBin, "build", "-trimpath", "-o", tmp.Name(), appPackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if outp, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", appPackage, err, outp)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", err
	}
	return out, nil
}

// Option changes the image built by Image.
type Option func(*v1.Config)

// WithEnv sets an environment variable in the image config.
func WithEnv(name, value string) Option {
	return func(c *v1.Config) { c.Env = append(c.Env, name+"="+value) }
}

// WithLabel sets an image label; different labels give different digests.
func WithLabel(key, value string) Option {
	return func(c *v1.Config) {
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		c.Labels[key] = value
	}
}

// WithHealthcheck gives the image a HEALTHCHECK running "/testapp health",
// which exits with $TESTAPP_HEALTH_EXIT (0 when unset): the container's
// environment decides whether it becomes healthy or unhealthy.
func WithHealthcheck(interval time.Duration, retries int) Option {
	return func(c *v1.Config) {
		c.Healthcheck = &v1.HealthConfig{
			Test:     []string{"CMD", AppPath, "health"},
			Interval: interval,
			// Generous: on a loaded CI machine starting the check process
			// can take longer than the interval, and a timeout would read
			// as unhealthy.
			Timeout: 10 * time.Second,
			Retries: retries,
		}
	}
}

// Image returns a one-layer linux image holding the test program at
// /testapp as its entrypoint. Media types are Docker schema 2, which every
// engine version we support pulls.
func Image(t testing.TB, opts ...Option) v1.Image {
	t.Helper()
	img, err := NewImage(opts...)
	if err != nil {
		t.Fatalf("testimage: %v", err)
	}
	return img
}

// NewImage is Image for a program.
func NewImage(opts ...Option) (v1.Image, error) {
	bin, err := Build()
	if err != nil {
		return nil, err
	}
	layerOnce.Do(func() { layer, layerErr = appLayer(bin) })
	if layerErr != nil {
		return nil, fmt.Errorf("layer: %w", layerErr)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: layerTime}
	cf.Config.Entrypoint = []string{AppPath}
	for _, o := range opts {
		o(&cf.Config)
	}
	sort.Strings(cf.Config.Env)
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("set config: %w", err)
	}
	return img, nil
}

// appLayer is a gzip layer with just the binary; it is built once per
// process because compressing the binary is the slow part of Image.
func appLayer(bin string) (v1.Layer, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{
		Name:    AppPath[1:],
		Mode:    0o755,
		Size:    int64(len(data)),
		ModTime: layerTime,
		Format:  tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	tarBytes := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarBytes)), nil
	}, tarball.WithCompressedCaching)
}
