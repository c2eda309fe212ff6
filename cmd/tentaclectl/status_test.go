package main

import (
	"encoding/json"
	"io"
	"regexp"
	"strings"
	"testing"
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
