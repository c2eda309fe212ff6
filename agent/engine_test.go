package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"go.uber.org/zap/zaptest"

	"github.com/tentacle-deploy/tentacle/agent/creds"
	"github.com/tentacle-deploy/tentacle/agent/docker"
	"github.com/tentacle-deploy/tentacle/agent/journal"
	"github.com/tentacle-deploy/tentacle/internal/spec"
	"github.com/tentacle-deploy/tentacle/internal/testimage"
)

// engineFixture is the real engine, a registry with basic auth holding the
// test app as <repository>:1.0, and a Deployer that pulls from it.
type engineFixture struct {
	api        client.APIClient
	d          *docker.Deployer
	app        string
	repository string
	digest     string
}

func newEngineFixture(t *testing.T, prefix string) *engineFixture {
	t.Helper()
	api := testimage.RequireEngine(t)
	reg := testimage.StartRegistry(t, "deployer", "registry-pw")
	app := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1e9)
	digest := reg.Push(t, "team/"+app, "1.0", testimage.Image(t, testimage.WithLabel("tentacle.test", app+":1.0")))
	t.Cleanup(func() {
		ctx := context.Background()
		list, _ := api.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", docker.LabelApp+"="+app))})
		for _, c := range list {
			api.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
		}
	})
	store, err := creds.New([]creds.Entry{{Registry: reg.Host(), Username: "deployer", Password: "registry-pw"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	return &engineFixture{api: api, d: docker.New(api, store, zaptest.NewLogger(t)), app: app, repository: reg.Host() + "/team/" + app, digest: digest}
}

func (f *engineFixture) assignment(taskID string) journal.Assignment {
	return journal.Assignment{TaskID: taskID, Application: f.app, ImageRepository: f.repository, ImageDigest: f.digest,
		RunSpec: spec.RunSpec{Env: []spec.EnvVar{{Name: "TESTAPP_INTERVAL", Value: "50ms"}}, ReadyAfter: time.Second, StopTimeout: 2 * time.Second}}
}

// The agent is killed after its new container took the application's
// name, during the health gate; the restarted agent, with the real engine,
// finishes the task on that container instead of creating another.
func TestRestartDuringGateFinishesOnTheSameContainer(t *testing.T) {
	t.Parallel()
	f := newEngineFixture(t, "tt-restart")
	a, _ := testAgent(t, f.d)
	ctx := context.Background()
	first := f.assignment("t0")
	a.journal.Accept(first)
	a.execute(ctx, first, false)
	if e := waitFinal(t, a, "t0"); e.State != stateSucceeded {
		t.Fatalf("first task = %+v", e)
	}
	old := waitFinal(t, a, "t0").ContainerID

	// What the killed agent left: t1 journaled up to verifying; the old
	// container stopped and set aside, t1's running under the app's name.
	second := f.assignment("t1")
	a.journal.Accept(second)
	for _, s := range []string{statePulling, stateStarting, stateVerifying} {
		a.journal.Append("t1", journal.Event{State: s})
	}
	if err := f.api.ContainerStop(ctx, old, container.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := f.api.ContainerRename(ctx, old, f.app+".previous"); err != nil {
		t.Fatal(err)
	}
	task := docker.Task{ID: "t1", Application: f.app, Repository: f.repository, Digest: f.digest, Spec: second.RunSpec.WithDefaults()}
	cfg, host := docker.ContainerConfig(task, f.repository+"@"+f.digest)
	created, err := f.api.ContainerCreate(ctx, cfg, host, nil, nil, f.app)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.api.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}

	a.reconcile(a.taskCtx)
	final := waitFinal(t, a, "t1")
	if final.State != stateSucceeded || final.ContainerID != created.ID || final.ImageDigest != f.digest {
		t.Fatalf("final event = %+v, want succeeded on container %s", final, created.ID)
	}
	list, err := f.api.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", docker.LabelApp+"="+f.app))})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != created.ID || list[0].State != "running" {
		t.Errorf("containers of %s after the restart: %+v, want only %s running", f.app, list, created.ID)
	}
}
