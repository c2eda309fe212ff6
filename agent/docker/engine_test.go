package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"go.uber.org/zap/zaptest"

	"github.com/tentacle-deploy/tentacle/agent/creds"
	"github.com/tentacle-deploy/tentacle/internal/spec"
	"github.com/tentacle-deploy/tentacle/internal/testimage"
)

// Helpers for the tests that run against the real engine.

const (
	regUser = "deployer"
	regPass = "s3cret-pw"
)

// engine returns a client for the local engine (see testimage.RequireEngine).
func engine(t *testing.T) client.APIClient { return testimage.RequireEngine(t) }

// fixture is a registry with basic auth, an agent credential store that
// knows it, and a Deployer, for one test.
type fixture struct {
	t     *testing.T
	api   client.APIClient
	reg   *testimage.Registry
	creds *creds.Store
	d     *Deployer
	app   string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	api := engine(t)
	reg := testimage.StartRegistry(t, regUser, regPass)
	store, err := creds.New([]creds.Entry{{Registry: reg.Host(), Username: regUser, Password: regPass}}, "")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, api: api, reg: reg, creds: store, app: appName(t)}
	f.d = New(api, store, zaptest.NewLogger(t))
	t.Cleanup(f.cleanup)
	return f
}

var nonName = regexp.MustCompile(`[^a-z0-9]+`)

// appName derives a container name from the test name, with a random
// suffix so that concurrent runs of the suite do not meet.
func appName(t *testing.T) string {
	n := strings.Trim(nonName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(n) > 40 {
		n = n[len(n)-40:]
	}
	b := make([]byte, 3)
	rand.Read(b)
	return "tt-" + strings.Trim(n, "-") + "-" + hex.EncodeToString(b)
}

// push builds a test image distinguished by label and pushes it as
// team/<app>:tag.
func (f *fixture) push(tag string, opts ...testimage.Option) string {
	opts = append([]testimage.Option{testimage.WithLabel("tentacle.test", f.app+":"+tag)}, opts...)
	return f.reg.Push(f.t, f.repoPath(), tag, testimage.Image(f.t, opts...))
}

func (f *fixture) repoPath() string   { return "team/" + f.app }
func (f *fixture) repository() string { return f.reg.Host() + "/" + f.repoPath() }

func (f *fixture) task(tag, digest string, env ...spec.EnvVar) Task {
	return Task{
		ID: "task-" + tag, DeploymentID: "dep-" + tag, ReleaseID: "rel-" + tag, ReleaseVersion: tag,
		Application: f.app, Repository: f.repository(), Tag: tag, Digest: digest,
		Spec: spec.RunSpec{
			Env:         append([]spec.EnvVar{{Name: "TESTAPP_INTERVAL", Value: "20ms"}}, env...),
			ReadyAfter:  time.Second,
			StopTimeout: 2 * time.Second,
		},
	}
}

// run deploys t and returns what the progress callback and logs received.
func (f *fixture) run(ctx context.Context, t Task) (Result, error, *recorder) {
	rec := &recorder{}
	res, err := f.d.Deploy(ctx, t, rec.progress, &rec.logs)
	return res, err, rec
}

// cleanup removes every container of the test's app and the images it
// pulled, whatever state the test left them in.
func (f *fixture) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := f.api.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelApp+"="+f.app))})
	if err != nil {
		f.t.Logf("cleanup: list containers: %v", err)
	}
	for _, c := range list {
		if err := f.api.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
			f.t.Logf("cleanup: remove container %s: %v", c.ID, err)
		}
	}
	imgs, err := f.api.ImageList(ctx, image.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "tentacle.test"))})
	if err != nil {
		f.t.Logf("cleanup: list images: %v", err)
	}
	for _, img := range imgs {
		if strings.HasPrefix(img.Labels["tentacle.test"], f.app+":") {
			if _, err := f.api.ImageRemove(ctx, img.ID, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
				f.t.Logf("cleanup: remove image %s: %v", img.ID, err)
			}
		}
	}
}

// inspectApp returns the container named exactly name, or nil.
func (f *fixture) inspect(name string) *container.InspectResponse {
	f.t.Helper()
	c, err := f.d.inspectName(context.Background(), name)
	if err != nil {
		f.t.Fatalf("inspect %s: %v", name, err)
	}
	return c
}

// assertCancelRestored checks what a cancelled Deploy leaves: an error
// that says it was cancelled, the old container running under the app's
// name, and nothing else.
func (f *fixture) assertCancelRestored(err error, oldID string) {
	f.t.Helper()
	if !errors.Is(err, context.Canceled) || KindOf(err) != FailureAgent {
		f.t.Fatalf("Deploy error = %v (kind %q), want context.Canceled, kind agent", err, KindOf(err))
	}
	if c := f.inspect(f.app); c == nil || c.ID != oldID || !c.State.Running {
		f.t.Errorf("old container not running after cancel: %+v", c)
	}
	f.assertNoLeftovers()
}

// assertNoLeftovers checks that no temporary container survived.
func (f *fixture) assertNoLeftovers() {
	f.t.Helper()
	for _, n := range []string{f.app + suffixNext, f.app + suffixPrevious} {
		if c := f.inspect(n); c != nil {
			f.t.Errorf("container %s left behind (%s)", n, c.ID)
		}
	}
	list, err := f.api.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelApp+"="+f.app))})
	if err != nil {
		f.t.Fatal(err)
	}
	if len(list) > 1 {
		f.t.Errorf("%d containers for app %s, want at most 1: %v", len(list), f.app, list)
	}
}

type recorder struct {
	mu      sync.Mutex
	phases  []Phase
	msgs    []string
	reports []Progress
	logs    syncBuffer
}

func (r *recorder) progress(p Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.phases) == 0 || r.phases[len(r.phases)-1] != p.Phase {
		r.phases = append(r.phases, p.Phase)
	}
	r.msgs = append(r.msgs, string(p.Phase)+": "+p.Message)
	r.reports = append(r.reports, p)
}

type syncBuffer = testimage.SyncBuffer

func env(name, value string) spec.EnvVar { return spec.EnvVar{Name: name, Value: value} }
