package main

import (
	"context"
	"encoding/json"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// status follows what really happens: a real server, a real agent (with a
// fake engine), deployments that succeed and fail, a target going away.
func TestStatusFollowsDeployments(t *testing.T) {
	t.Parallel()
	r := startRealServer(t)
	r.must(t, "env", "create", "dev")
	r.must(t, "env", "create", "prod")
	r.must(t, "app", "create", "web", "--image", "r.example.com/web", "--roles", "web")
	r.must(t, "app", "create", "api", "--image", "r.example.com/api", "--roles", "api")
	r.must(t, "release", "create", "--app", "web", "--tag", "1.0")
	r.must(t, "release", "create", "--app", "web", "--tag", "2.0")

	// Columns in lifecycle order; nothing deployed yet.
	wantOutput(t, r.must(t, "status").stdout, ""+
		"APP  dev  prod\n"+
		"api  -    -\n"+
		"web  -    -\n")

	engine := &fakeEngine{}
	a := r.startAgent(t, "dev", "web", engine)
	res := r.must(t, "deploy", "--app", "web", "--release", "1.0", "--env", "dev", "--wait")
	// Off a terminal, a line per change, as the real agent reports them;
	// whether the agent had the task before the watch began is timing.
	clock, name := `\d\d:\d\d:\d\d  `, regexp.QuoteMeta(a.name)
	if !regexp.MustCompile(`^deployment \S+: web 1.0 to dev, 1 task\n` +
		`(` + clock + name + `  assigned   sent to the agent\n)?` +
		`(` + clock + name + `  accepted   accepted by the agent\n)?` +
		clock + name + `  pulling    pulling r.example.com/web:1.0\n` +
		clock + name + `  starting   starting\n` +
		clock + name + `  succeeded  running sha256:(ab){32}\n` +
		`deployment \S+ succeeded: 1 of 1 tasks succeeded\n$`).MatchString(res.stdout) {
		t.Fatalf("deploy --wait:\n%s", res.stdout)
	}
	wantOutput(t, r.must(t, "status").stdout, ""+
		"APP  dev     prod\n"+
		"api  -       -\n"+
		"web  1.0 ok  -\n")

	// A failed deployment: the cell says what runs and what failed, and
	// the target view says why.
	engine.set(errImageMissing, false)
	res = r.run(t, "deploy", "--app", "web", "--release", "2.0", "--env", "dev", "--wait")
	wantCode(t, res, 1)
	if !strings.Contains(res.stdout, " failed: 0 of 1 tasks succeeded\n") || !strings.Contains(res.stdout, "manifest unknown") {
		t.Fatalf("deploy --wait of a failing release:\n%s", res.stdout)
	}
	wantOutput(t, r.must(t, "status").stdout, ""+
		"APP  dev               prod\n"+
		"api  -                 -\n"+
		"web  1.0 x 2.0 failed  -\n"+
		"hint: tentaclectl status --app web --env dev shows each target\n")
	res = r.must(t, "status", "--app", "web", "--env", "dev")
	for _, want := range []string{
		"web in dev: 1.0 x 2.0 failed\n",
		"Current release:    1.0\n",
		" (2.0 failed, ",
	} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("status --app web --env dev lacks %q:\n%s", want, res.stdout)
		}
	}
	// Its health depends on what the agent reports of its (fake) engine.
	if !regexp.MustCompile(`\nTARGET +RELEASE  SESSION    HEALTH +LAST TASK  DRIFT\n` + regexp.QuoteMeta(a.name) + ` +1.0      connected  (healthy|degraded) +failed     -\n$`).MatchString(res.stdout) {
		t.Errorf("status --app web --env dev: no target table with %s:\n%s", a.name, res.stdout)
	}

	engine.set(nil, false)
	r.must(t, "deploy", "--app", "web", "--release", "2.0", "--env", "dev", "--wait")
	a.stop()
	r.eventually(t, "web  2.0 ! 1 offline  -\n", "status")

	// A UTF-8 terminal gets the marks and their legend.
	r.h.terminal = func(io.Writer) (int, int, bool) { return 80, 24, true }
	r.env["LANG"] = "en_US.UTF-8"
	wantOutput(t, r.must(t, "status", "--env", "dev").stdout, ""+
		"APP  dev\n"+
		"api  ·\n"+
		"web  2.0 ⚠ 1 offline\n"+
		"✓ healthy  ↻ deploying (done/all)  ✗ failed  ⚠ see targets  · never deployed\n"+
		"hint: tentaclectl status --app web --env dev shows each target\n")
	// --ascii, or a terminal that is not UTF-8, gets words.
	if out := r.must(t, "status", "--env", "dev", "--ascii").stdout; !strings.Contains(out, "web  2.0 ! 1 offline\n") {
		t.Errorf("status --ascii:\n%s", out)
	}
	r.env["LANG"] = "C"
	if out := r.must(t, "status", "--env", "dev").stdout; !strings.Contains(out, "web  2.0 ! 1 offline\n") {
		t.Errorf("status with LANG=C:\n%s", out)
	}

	var doc struct {
		Applications []struct {
			Application, Environment, CurrentVersion, State string
			Targets                                         []struct {
				Target    string
				Connected bool
			}
		}
	}
	if err := json.Unmarshal([]byte(r.must(t, "status", "--app", "web", "-o", "json").stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Applications) != 2 || doc.Applications[0].State != "offline" || doc.Applications[0].CurrentVersion != "2.0" ||
		len(doc.Applications[0].Targets) != 1 || doc.Applications[0].Targets[0].Target != a.name || doc.Applications[1].State != "none" {
		t.Errorf("status -o json = %+v", doc)
	}

	res = r.run(t, "status", "--app", "nope")
	wantCode(t, res, 1)
	wantOutput(t, res.stderr, "tentaclectl: application \"nope\": not found\n")
}

// cannedStatus is what GetStatus answers, per fake server.
var cannedStatus sync.Map // *fakeAdmin → *tentaclev1.GetStatusResponse

func (f *fakeAdmin) GetStatus(ctx context.Context, req *tentaclev1.GetStatusRequest) (*tentaclev1.GetStatusResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	resp, _ := cannedStatus.Load(f)
	return resp.(*tentaclev1.GetStatusResponse), nil
}

func TestStatusDrift(t *testing.T) {
	t.Parallel()
	fake := &fakeAdmin{}
	cannedStatus.Store(fake, &tentaclev1.GetStatusResponse{Applications: []*tentaclev1.ApplicationStatus{{
		Application: "web", Environment: "prod", CurrentVersion: "1.4.0", State: "drift",
		LatestDeployment: &tentaclev1.Deployment{Id: "dep-1", ReleaseVersion: "1.4.0", State: tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED, Kind: "deploy", CreatedAt: timestamppb.New(t0)},
		Targets: []*tentaclev1.TargetStatus{
			{Target: "web-1", Version: "1.4.0", Connected: true, LastTaskState: tentaclev1.TaskState_TASK_STATE_SUCCEEDED, HealthState: tentaclev1.TargetHealthState_TARGET_HEALTH_STATE_DEGRADED,
				Drift: &tentaclev1.Drift{Application: "web", Kind: "removed", Detail: "container web is gone (removed by hand?); release 1.4.0 should run",
					ExpectedReleaseVersion: "1.4.0", ExpectedTaskId: "task-1", Since: timestamppb.New(t0)}},
			{Target: "web-2", Version: "1.4.0", Connected: true, LastTaskState: tentaclev1.TaskState_TASK_STATE_SUCCEEDED, HealthState: tentaclev1.TargetHealthState_TARGET_HEALTH_STATE_HEALTHY},
		},
	}}})
	h := newHarness(t, fake)
	r := h.run(t, "status")
	wantCode(t, r, 0)
	wantOutput(t, r.stdout, ""+
		"APP  prod\n"+
		"web  1.4.0 ! 1 drift\n"+
		"hint: tentaclectl status --app web --env prod shows each target\n")

	h.terminal = func(io.Writer) (int, int, bool) { return 80, 24, true }
	r = h.runEnv(t, context.Background(), map[string]string{"LANG": "en_US.UTF-8", "TENTACLE_SERVER": h.addr, "TENTACLE_TOKEN": testToken, "TENTACLE_CA_FILE": h.caFile}, "status")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "web  1.4.0 ⚠ 1 drift\n") {
		t.Errorf("status on a UTF-8 terminal:\n%s", r.stdout)
	}

	h.terminal = nil
	r = h.run(t, "status", "--app", "web", "--env", "prod")
	wantCode(t, r, 0)
	wantOutput(t, r.stdout, ""+
		"web in prod: 1.4.0 ! 1 drift\n"+
		"Current release:    1.4.0\n"+
		"Latest deployment:  dep-1 (1.4.0 succeeded, deploy, created 2026-01-02 03:04:05)\n"+
		"\n"+
		"TARGET  RELEASE  SESSION    HEALTH    LAST TASK  DRIFT\n"+
		"web-1   1.4.0    connected  degraded  succeeded  removed\n"+
		"web-2   1.4.0    connected  healthy   succeeded  -\n"+
		"drift on web-1 since 2026-01-02 03:04:05: container web is gone (removed by hand?); release 1.4.0 should run\n"+
		"hint: tentaclectl deploy --app web --release 1.4.0 --env prod --missing puts it right\n")
}
