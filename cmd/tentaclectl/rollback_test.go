package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// newestDeployment is the id and state of the newest deployment.
func (r *realServer) newestDeployment(t *testing.T) (id, state string) {
	t.Helper()
	var doc struct{ Deployments []struct{ ID, State string } }
	if err := json.Unmarshal([]byte(r.must(t, "deployments", "--limit", "1", "-o", "json").stdout), &doc); err != nil || len(doc.Deployments) != 1 {
		t.Fatalf("deployments -o json: %v %+v", err, doc)
	}
	return doc.Deployments[0].ID, doc.Deployments[0].State
}

// Rollback and cancel against the real server and a real agent: the
// refusals a user meets, then each working end to end.
func TestRollbackAndCancel(t *testing.T) {
	t.Parallel()
	r := startRealServer(t)
	r.must(t, "env", "create", "dev")
	r.must(t, "app", "create", "web", "--image", "r.example.com/web")
	for _, v := range []string{"1.0", "2.0"} {
		r.must(t, "release", "create", "--app", "web", "--tag", v)
	}
	engine := &fakeEngine{}
	engine.set(nil, false)
	r.startAgent(t, "dev", "", engine)

	refused := func(want string, args ...string) {
		t.Helper()
		res := r.run(t, args...)
		wantCode(t, res, 1)
		wantOutput(t, res.stderr, "tentaclectl: "+want+"\n")
		if res.stdout != "" {
			t.Errorf("%q: stdout %q", args, res.stdout)
		}
	}
	refused("nothing to roll back to: web has no succeeded deployment in dev", "rollback", "web", "--env", "dev")
	r.must(t, "deploy", "--app", "web", "--release", "1.0", "--env", "dev", "--wait")
	refused("nothing to roll back to: web 1.0 is the only release that succeeded in dev", "rollback", "web", "--env", "dev", "--wait")
	r.must(t, "deploy", "--app", "web", "--release", "2.0", "--env", "dev", "--wait")

	res := r.must(t, "rollback", "web", "--env", "dev", "--window", "1", "--wait")
	if !strings.HasPrefix(res.stdout, "rolling web back in dev from 2.0 to 1.0\ndeployment ") ||
		!strings.HasSuffix(res.stdout, " succeeded: 1 of 1 tasks succeeded\n") {
		t.Fatalf("rollback --wait:\n%s", res.stdout)
	}
	id, _ := r.newestDeployment(t)
	show := r.must(t, "deployment", "show", id).stdout
	for _, want := range []string{"Release:      1.0 ", "Kind:         rollback\n", "Rollout:      1 per wave, on failure halt\n", "State:        succeeded\n"} {
		if !strings.Contains(show, want) {
			t.Errorf("deployment show of the rollback lacks %q:\n%s", want, show)
		}
	}
	if out := r.must(t, "status").stdout; out != "APP  dev\nweb  1.0 ok\n" {
		t.Errorf("status after the rollback:\n%s", out)
	}
	refused("deployment "+id+" has already finished (succeeded): there is nothing to cancel", "deployment", "cancel", id)

	// Cancel a deployment while the agent runs its task: deploy --wait
	// sees it end cancelled and exits 1.
	engine.set(nil, true)
	go func() {
		<-engine.started
		id, state := r.newestDeployment(t)
		if state != "DEPLOYMENT_STATE_RUNNING" {
			t.Errorf("newest deployment %s is %s, want running", id, state)
		}
		res := r.run(t, "deployment", "cancel", id)
		if res.code != 0 || !strings.HasPrefix(res.stdout, "cancelling deployment "+id+": ") {
			t.Errorf("deployment cancel: exit %d\n%s%s", res.code, res.stdout, res.stderr)
		}
	}()
	res = r.run(t, "deploy", "--app", "web", "--release", "2.0", "--env", "dev", "--wait")
	wantCode(t, res, 1)
	if !strings.Contains(res.stdout, " cancelled: 0 of 1 tasks succeeded\n") || !strings.Contains(res.stdout, "task ") {
		t.Fatalf("deploy --wait of a cancelled deployment:\n%s", res.stdout)
	}
	if out := r.must(t, "status").stdout; out != "APP  dev\nweb  1.0 x 2.0 cancelled\nhint: tentaclectl status --app web --env dev shows each target\n" {
		t.Errorf("status after the cancel:\n%s", out)
	}
}

// env update changes what it is told to, on the real server.
func TestEnvUpdate(t *testing.T) {
	t.Parallel()
	r := startRealServer(t)
	r.must(t, "env", "create", "dev", "--description", "Developers")
	r.must(t, "env", "create", "prod", "--auto-deploy", "--required-targets", "2")
	res := r.must(t, "env", "update", "dev", "--auto-deploy", "--required-targets", "3")
	wantOutput(t, res.stdout, "updated environment dev: auto-deploy yes, required targets 3, description \"Developers\"\n")
	r.must(t, "env", "update", "prod", "--auto-deploy=false")
	list := r.must(t, "env", "list").stdout
	for _, want := range []string{"\ndev   yes          3         Developers  ", "\nprod  no           2         -           "} {
		if !strings.Contains(list, want) {
			t.Errorf("env list lacks %q:\n%s", want, list)
		}
	}
	res = r.run(t, "env", "update", "staging", "--auto-deploy")
	wantCode(t, res, 1)
	wantOutput(t, res.stderr, "tentaclectl: environment \"staging\": not found\n")
}
