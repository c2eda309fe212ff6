package agent

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/agent/docker"
	"github.com/tentacle-deploy/tentacle/agent/journal"
	"github.com/tentacle-deploy/tentacle/internal/mask"
	"github.com/tentacle-deploy/tentacle/internal/spec"
)

const secret = "hunter2-secret"

// leakyRunner prints the secret the way a careless program would: split
// across writes, in a progress message and in its error.
type leakyRunner struct{}

func (leakyRunner) Deploy(_ context.Context, t docker.Task, progress func(docker.Progress), logs io.Writer) (docker.Result, error) {
	progress(docker.Progress{Phase: docker.PhasePulling, Message: "using password " + secret})
	io.WriteString(logs, "password=hunt")
	io.WriteString(logs, "er2-secret and visible=plain-value\nends with hunter2")
	return docker.Result{}, &docker.Failure{Kind: docker.FailureContainerExited, Err: fmt.Errorf("exited; last line: DB_PASSWORD=%s", secret)}
}

func (leakyRunner) EngineVersion(context.Context) (string, error) { return "test", nil }

func (leakyRunner) Reconcile(context.Context, docker.Task, func(docker.Progress), io.Writer) (docker.Result, error) {
	return docker.Result{}, docker.ErrNotCreated
}

// assertMasked checks a finished task's spooled log and events.
func assertMasked(t *testing.T, j *journal.Journal, taskID string, wantLog ...string) journal.Event {
	t.Helper()
	log, err := j.ReadLog(taskID, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(log), secret) {
		t.Errorf("spooled log contains the secret:\n%s", log)
	}
	for _, w := range wantLog {
		if !strings.Contains(string(log), w) {
			t.Errorf("spooled log lacks %q:\n%s", w, log)
		}
	}
	evs := j.EventsAfter(taskID, 0)
	for _, e := range evs {
		if strings.Contains(e.Message, secret) {
			t.Errorf("event %d message contains the secret: %q", e.Seq, e.Message)
		}
	}
	if len(evs) == 0 || !evs[len(evs)-1].Final {
		t.Fatalf("no final event: %+v", evs)
	}
	return evs[len(evs)-1]
}

func TestSensitiveEnvIsMasked(t *testing.T) {
	t.Parallel()
	a, _ := testAgent(t, leakyRunner{})
	as := journal.Assignment{TaskID: "t1", Application: "web", ImageRepository: "registry.example.com/team/web", ImageDigest: testDigest,
		RunSpec:      spec.RunSpec{Env: []spec.EnvVar{{Name: "DB_PASSWORD", Value: secret}, {Name: "VISIBLE", Value: "plain-value"}}},
		SensitiveEnv: []string{"DB_PASSWORD"}}
	if _, err := a.journal.Accept(as); err != nil {
		t.Fatal(err)
	}
	a.execute(context.Background(), as, false)
	final := assertMasked(t, a.journal, "t1",
		"password="+mask.Replacement+" and visible=plain-value\n",
		// A prefix of the secret at the very end is not the secret: it is
		// written out when the task ends.
		"ends with hunter2",
		"tentacle: pulling: using password "+mask.Replacement)
	if final.Message != "exited; last line: DB_PASSWORD="+mask.Replacement {
		t.Errorf("final message = %q", final.Message)
	}
}

// The real thing: a container prints its secret env var and fails; the
// task's spooled log and its failure message (which quotes the container's
// last lines) do not contain the value.
func TestSensitiveEnvIsMaskedInContainerOutput(t *testing.T) {
	t.Parallel()
	f := newEngineFixture(t, "tt-mask")
	a, _ := testAgent(t, f.d)
	as := journal.Assignment{TaskID: "t1", Application: f.app, ImageRepository: f.repository, ImageDigest: f.digest,
		RunSpec: spec.RunSpec{Env: []spec.EnvVar{
			{Name: "DB_PASSWORD", Value: secret}, {Name: "TESTAPP_PRINT_ENV", Value: "DB_PASSWORD"},
			{Name: "TESTAPP_LINES", Value: "1"}, {Name: "TESTAPP_EXIT", Value: "1"},
		}, ReadyAfter: time.Minute, StopTimeout: 2 * time.Second},
		SensitiveEnv: []string{"DB_PASSWORD"}}
	if _, err := a.journal.Accept(as); err != nil {
		t.Fatal(err)
	}
	a.execute(context.Background(), as, false)
	final := assertMasked(t, a.journal, "t1", "env DB_PASSWORD="+mask.Replacement+"\n")
	if final.FailureKind != string(docker.FailureContainerExited) || !strings.Contains(final.Message, "env DB_PASSWORD="+mask.Replacement) {
		t.Errorf("final event = %+v, want container_exited quoting the masked output", final)
	}
}
