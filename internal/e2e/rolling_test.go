package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tentacle-deploy/tentacle/internal/testimage"
)

// TestRollingDeploymentOverFourAgents runs four real agent processes on the
// local engine (each with its own container prefix, as four hosts would
// have their own engines) and rolls releases over them two at a time. A
// variable scoped to one target makes that target's new container exit, so
// its wave fails: the failed target is rolled back to what it ran, the
// targets of earlier waves keep the new release, and later waves never
// start.
func TestRollingDeploymentOverFourAgents(t *testing.T) {
	docker := requireDocker(t)
	reg := testimage.StartRegistry(t, "roll-user", "roll-pass")
	for _, v := range []string{"1", "2", "3"} {
		reg.Push(t, "roll/web", v+".0", testimage.Image(t, testimage.WithLabel("e2e.release", v)))
	}
	s := startSystem(t)
	removeContainers(t, docker, "roll-web")
	s.ok("env", "create", "roll")
	creds := fmt.Sprintf("registries:\n  - registry: %s\n    username: roll-user\n    password: roll-pass\n", reg.Host())
	names, prefixes, _ := s.prefixedAgents("roll", creds, "ra-", "rb-", "rc-", "rd-")
	slices.Sort(names) // waves take targets in name order
	s.waitConnected(4)
	release := func(target string) string {
		t.Helper()
		c := inspect(t, docker, prefixes[target]+"roll-web")
		if !c.State.Running {
			t.Errorf("%s: container not running", target)
		}
		return c.Config.Labels["e2e.release"]
	}
	type rollTask struct {
		taskJSON
		Wave int
	}
	tasksOf := func(version string) map[string]rollTask {
		t.Helper()
		var deps struct {
			Deployments []struct{ ID, ReleaseVersion, State string }
		}
		s.json(&deps, "deployments", "--app", "roll-web")
		for _, d := range deps.Deployments {
			if d.ReleaseVersion == version {
				var ts struct{ Tasks []rollTask }
				s.json(&ts, "tasks", "--deployment", d.ID)
				m := map[string]rollTask{}
				for _, tk := range ts.Tasks {
					m[tk.TargetName] = tk
				}
				return m
			}
		}
		t.Fatalf("no deployment of %s", version)
		return nil
	}

	s.ok("app", "create", "roll-web", "--image", reg.Host()+"/roll/web", "--ready-after", "1s",
		"--window", "2", "--on-failure", "halt")
	s.ok("release", "create", "--app", "roll-web", "--tag", "1.0")
	s.ok("deploy", "--app", "roll-web", "--release", "1.0", "--env", "roll", "--wait")
	for _, n := range names {
		if r := release(n); r != "1" {
			t.Fatalf("%s runs release %q after 1.0", n, r)
		}
	}

	t.Run("second wave fails: earlier wave keeps the release, the failed target rolls back", func(t *testing.T) {
		last := names[3]
		s.ok("var", "set", "roll-web", "TESTAPP_EXIT", "3", "--target", last)
		s.ok("release", "create", "--app", "roll-web", "--tag", "2.0")
		out, errOut, code := s.ctl("deploy", "--app", "roll-web", "--release", "2.0", "--env", "roll", "--wait", "--pause", "1s")
		if code == 0 {
			t.Fatalf("deploy --wait exit 0 although %s fails:\n%s", last, out)
		}
		if !strings.Contains(out+errOut, last) {
			t.Errorf("deploy --wait output does not name the failed target %s:\n%s\n%s", last, out, errOut)
		}
		tasks := tasksOf("2.0")
		for i, n := range names {
			tk := tasks[n]
			if want := i/2 + 1; tk.Wave != want {
				t.Errorf("%s in wave %d, want %d", n, tk.Wave, want)
			}
			wantState, wantRelease := "TASK_STATE_SUCCEEDED", "2"
			if n == last {
				wantState, wantRelease = "TASK_STATE_FAILED", "1"
				if tk.FailureKind != "FAILURE_KIND_CONTAINER_EXITED" {
					t.Errorf("%s failure kind %s", n, tk.FailureKind)
				}
			}
			if tk.State != wantState {
				t.Errorf("%s task %s (%s), want %s", n, tk.State, tk.Message, wantState)
			}
			if r := release(n); r != wantRelease {
				t.Errorf("%s runs release %s, want %s", n, r, wantRelease)
			}
		}
	})

	t.Run("first wave fails: the rest halt and never run", func(t *testing.T) {
		first := names[0]
		s.ok("var", "delete", "roll-web", "TESTAPP_EXIT", "--target", names[3])
		s.ok("var", "set", "roll-web", "TESTAPP_EXIT", "3", "--target", first)
		s.ok("release", "create", "--app", "roll-web", "--tag", "3.0")
		if _, _, code := s.ctl("deploy", "--app", "roll-web", "--release", "3.0", "--env", "roll", "--wait"); code == 0 {
			t.Fatal("deploy --wait exit 0 although the first wave failed")
		}
		tasks := tasksOf("3.0")
		if tk := tasks[names[0]]; tk.State != "TASK_STATE_FAILED" {
			t.Errorf("%s: %s", names[0], tk.State)
		}
		if tk := tasks[names[1]]; tk.State != "TASK_STATE_SUCCEEDED" {
			t.Errorf("%s: %s (%s)", names[1], tk.State, tk.Message)
		}
		for _, n := range names[2:] {
			tk := tasks[n]
			if tk.State != "TASK_STATE_CANCELLED" || tk.FailureKind != "FAILURE_KIND_HALTED" || !strings.Contains(tk.Message, first) {
				t.Errorf("%s: %+v; want cancelled, halted, naming %s", n, tk, first)
			}
		}
		want := map[string]string{names[0]: "2", names[1]: "3", names[2]: "2", names[3]: "1"}
		for n, r := range want {
			if got := release(n); got != r {
				t.Errorf("%s runs release %s, want %s", n, got, r)
			}
		}
	})
}
