package e2e

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/tentacle-deploy/tentacle/internal/testimage"
)

type targetsJSON struct {
	Targets []struct {
		Name          string
		Environment   string
		Connected     bool
		RevokedAt     string
		DockerVersion string
	}
}

type taskJSON struct {
	ID          string
	TargetName  string
	State       string
	Message     string
	FailureKind string
	ImageDigest string
}

// TestEndToEnd drives the whole system as its users do: an admin with
// tentaclectl, two enrolled agents (one with registry credentials, one
// without), a private registry with basic auth and the local Docker engine.
func TestEndToEnd(t *testing.T) {
	docker := requireDocker(t)
	reg := testimage.StartRegistry(t, "e2e-user", "e2e-pass")
	digest1 := reg.Push(t, "e2e/web", "1.0", testimage.Image(t, testimage.WithLabel("e2e.release", "1")))
	digest2 := reg.Push(t, "e2e/web", "2.0", testimage.Image(t, testimage.WithLabel("e2e.release", "2")))

	s := startSystem(t)
	for _, name := range []string{"e2e-web", "e2e-nocreds"} {
		removeContainers(t, docker, name)
	}
	s.ok("env", "create", "e2e")
	s.ok("env", "create", "e2e-nocreds")
	creds := fmt.Sprintf("registries:\n  - registry: %s\n    username: e2e-user\n    password: e2e-pass\n", reg.Host())
	s.agentProc("e2e", "with-creds", creds)
	nocreds := s.agentProc("e2e-nocreds", "without-creds", "")
	s.waitConnected(2)

	image := reg.Host() + "/e2e/web"
	s.ok("app", "create", "e2e-web", "--image", image, "--env", "GREETING=hello-e2e", "--env", "TESTAPP_PRINT_ENV=GREETING",
		"--env", "TESTAPP_LINES=30", "--env", "TESTAPP_INTERVAL=10ms", "--env", "TESTAPP_STDERR=1", "--ready-after", "2s")
	s.ok("release", "create", "--app", "e2e-web", "--tag", "1.0")

	var first string
	t.Run("first release runs with its env and logs come back in order", func(t *testing.T) {
		out, errOut, code := s.ctl("deploy", "--app", "e2e-web", "--release", "1.0", "--env", "e2e", "--wait")
		if code != 0 {
			t.Fatalf("deploy --wait exit %d\n%s\n%s", code, out, errOut)
		}
		task := onlyTask(t, s, "e2e-web", "1.0")
		if task.ImageDigest != digest1 {
			t.Fatalf("recorded digest %s, pushed %s", task.ImageDigest, digest1)
		}
		log := s.ok("logs", task.ID)
		if !strings.Contains(log, "env GREETING=hello-e2e\n") {
			t.Errorf("task log lacks the env line:\n%s", log)
		}
		assertLinesInOrder(t, log, 30)
		c := inspect(t, docker, "e2e-web")
		if !slices.Contains(c.Config.Env, "GREETING=hello-e2e") || c.Config.Labels["tentacle.task"] != task.ID || !c.State.Running {
			t.Fatalf("container env %v labels %v running %v", c.Config.Env, c.Config.Labels, c.State.Running)
		}
		if c.Config.Labels["e2e.release"] != "1" {
			t.Fatalf("container runs image with label e2e.release=%q, want 1", c.Config.Labels["e2e.release"])
		}
		first = c.ID
		var rels struct {
			Releases []struct{ Version, ImageDigest string }
		}
		s.json(&rels, "release", "list", "--app", "e2e-web")
		if rels.Releases[0].ImageDigest != digest1 {
			t.Fatalf("release not pinned to the pulled digest: %+v", rels.Releases)
		}
	})

	t.Run("second release replaces the container", func(t *testing.T) {
		s.ok("release", "create", "--app", "e2e-web", "--tag", "2.0")
		s.ok("deploy", "--app", "e2e-web", "--release", "2.0", "--env", "e2e", "--wait")
		task := onlyTask(t, s, "e2e-web", "2.0")
		if task.ImageDigest != digest2 {
			t.Fatalf("recorded digest %s, pushed %s", task.ImageDigest, digest2)
		}
		c := inspect(t, docker, "e2e-web")
		if c.ID == first || c.Config.Labels["e2e.release"] != "2" || c.Config.Labels["tentacle.task"] != task.ID {
			t.Fatalf("container %s labels %v: not replaced by release 2.0", c.ID, c.Config.Labels)
		}
		if _, err := docker.ContainerInspect(context.Background(), first); !cerrdefs.IsNotFound(err) {
			t.Fatalf("old container %s still exists (err %v)", first, err)
		}
	})

	t.Run("agent without credentials fails with unauthorized naming the registry", func(t *testing.T) {
		s.ok("app", "create", "e2e-nocreds", "--image", image, "--ready-after", "1s")
		s.ok("release", "create", "--app", "e2e-nocreds", "--tag", "1.0")
		// e2e-nocreds comes after e2e in the lifecycle, and this release never
		// ran in e2e: refused, unless an admin forces it.
		_, errOut, code := s.ctl("deploy", "--app", "e2e-nocreds", "--release", "1.0", "--env", "e2e-nocreds")
		if want := `tentaclectl: release "1.0" of "e2e-nocreds" has not succeeded in "e2e", the environment before "e2e-nocreds": deploy it there first, or pass --force (role admin)`; code != 1 || !strings.HasPrefix(errOut, want) {
			t.Fatalf("deploy skipping the lifecycle: exit %d, %q; want 1 and %q", code, errOut, want)
		}
		out, errOut, code := s.ctl("deploy", "--app", "e2e-nocreds", "--release", "1.0", "--env", "e2e-nocreds", "--force", "--wait")
		if code != 1 {
			t.Fatalf("deploy --wait exit %d, want 1\n%s\n%s", code, out, errOut)
		}
		task := onlyTask(t, s, "e2e-nocreds", "1.0")
		if task.State != "TASK_STATE_FAILED" || task.FailureKind != "FAILURE_KIND_IMAGE_UNAUTHORIZED" ||
			!strings.Contains(task.Message, "unauthorized") || !strings.Contains(task.Message, reg.Host()) {
			t.Fatalf("task = %+v; want failed, unauthorized, naming %s", task, reg.Host())
		}
		if !strings.Contains(out+errOut, "unauthorized") {
			t.Errorf("deploy --wait output does not show the reason:\n%s\n%s", out, errOut)
		}
	})

	t.Run("a tag that does not exist fails with not found and leaves the running container alone", func(t *testing.T) {
		before := inspect(t, docker, "e2e-web").ID
		s.ok("release", "create", "--app", "e2e-web", "--tag", "9.9-missing")
		_, _, code := s.ctl("deploy", "--app", "e2e-web", "--release", "9.9-missing", "--env", "e2e", "--wait")
		if code != 1 {
			t.Fatalf("deploy --wait exit %d, want 1", code)
		}
		task := onlyTask(t, s, "e2e-web", "9.9-missing")
		if task.FailureKind != "FAILURE_KIND_IMAGE_NOT_FOUND" || !strings.Contains(task.Message, "not found") {
			t.Fatalf("task = %+v; want image not found", task)
		}
		if c := inspect(t, docker, "e2e-web"); c.ID != before || !c.State.Running {
			t.Fatalf("running container changed after a failed pull: %s → %s running=%v", before, c.ID, c.State.Running)
		}
	})

	t.Run("a revoked target is cut off and stays out", func(t *testing.T) {
		name := targetIn(t, s, "e2e-nocreds")
		out := s.ok("target", "revoke", name)
		if !strings.Contains(out, "enroll --force") {
			t.Errorf("target revoke output does not say how to come back:\n%s", out)
		}
		waitFor(t, "the revoked agent's session to close", 10*time.Second, func() bool {
			var ts targetsJSON
			s.json(&ts, "targets")
			for _, tg := range ts.Targets {
				if tg.Name == name {
					return !tg.Connected && tg.RevokedAt != ""
				}
			}
			return false
		})
		waitFor(t, "the agent to log the refusal", 10*time.Second, func() bool {
			return strings.Contains(nocreds.out.String(), "was revoked at")
		})
		var audit struct {
			Records []struct{ Action, Object, Outcome string }
		}
		s.json(&audit, "audit")
		found := false
		for _, r := range audit.Records {
			found = found || (r.Action == "RevokeTarget" && r.Object == "target/"+name && r.Outcome == "ok")
		}
		if !found {
			t.Errorf("no audit record of the revocation: %+v", audit.Records)
		}
	})
}

// targetIn returns the name of the target enrolled in env.
func targetIn(t *testing.T, s *system, env string) string {
	t.Helper()
	var ts targetsJSON
	s.json(&ts, "targets")
	for _, tg := range ts.Targets {
		if tg.Environment == env {
			return tg.Name
		}
	}
	t.Fatalf("no target in %s", env)
	return ""
}

// onlyTask returns the single task of the newest deployment of app@version.
func onlyTask(t *testing.T, s *system, app, version string) taskJSON {
	t.Helper()
	var deps struct {
		Deployments []struct{ ID, ReleaseVersion string }
	}
	s.json(&deps, "deployments", "--app", app)
	for _, d := range deps.Deployments {
		if d.ReleaseVersion != version {
			continue
		}
		var ts struct{ Tasks []taskJSON }
		s.json(&ts, "tasks", "--deployment", d.ID)
		if len(ts.Tasks) != 1 {
			t.Fatalf("deployment %s has %d tasks, want 1", d.ID, len(ts.Tasks))
		}
		return ts.Tasks[0]
	}
	t.Fatalf("no deployment of %s %s", app, version)
	return taskJSON{}
}

var lineRE = regexp.MustCompile(`(?m)^line (\d+) `)

// assertLinesInOrder checks "line 1".."line n" appear once each, in order.
func assertLinesInOrder(t *testing.T, log string, n int) {
	t.Helper()
	var got []string
	for _, m := range lineRE.FindAllStringSubmatch(log, -1) {
		got = append(got, m[1])
	}
	var want []string
	for i := 1; i <= n; i++ {
		want = append(want, fmt.Sprint(i))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("container lines in the task log = %v, want 1..%d in order\n%s", got, n, log)
	}
}

func inspect(t *testing.T, docker *client.Client, name string) container.InspectResponse {
	t.Helper()
	c, err := docker.ContainerInspect(context.Background(), name)
	if err != nil {
		t.Fatalf("inspect %s: %v", name, err)
	}
	return c
}

// waitConnected waits until n targets hold a session.
func (s *system) waitConnected(n int) {
	s.t.Helper()
	waitFor(s.t, fmt.Sprintf("%d agents connected", n), 30*time.Second, func() bool {
		var ts targetsJSON
		s.json(&ts, "targets")
		connected := 0
		for _, tg := range ts.Targets {
			if tg.Connected {
				connected++
			}
		}
		return connected == n
	})
}

// removeContainers removes the app's container and leftovers now and when
// the test ends.
func removeContainers(t *testing.T, docker *client.Client, app string) {
	clean := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		list, _ := docker.ContainerList(ctx, container.ListOptions{All: true})
		for _, c := range list {
			if c.Labels["tentacle.app"] == app || slices.Contains(c.Names, "/"+app) {
				docker.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
			}
		}
	}
	clean()
	t.Cleanup(clean)
}
