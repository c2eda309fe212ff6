package server

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
	"github.com/tentacle-deploy/tentacle/server/store"
)

// TestStateCountsAreCachedAndEveryStateIsReported: scrapes in a row read
// the store once, and a state nothing is in is reported as 0 (alerts
// compare against it).
func TestStateCountsAreCachedAndEveryStateIsReported(t *testing.T) {
	t.Parallel()
	var reads atomic.Int32
	c := newStateCollector("tentacle_server_tasks", "help", taskStateNames,
		func(context.Context) (map[store.TaskState]int, error) {
			reads.Add(1)
			return map[store.TaskState]int{store.TaskQueued: 2, store.TaskSucceeded: 5}, nil
		})
	for range 3 {
		if n := testutil.CollectAndCount(c); n != len(taskStateNames) {
			t.Fatalf("%d series, want one per state (%d)", n, len(taskStateNames))
		}
	}
	if n := reads.Load(); n != 1 {
		t.Errorf("three scrapes read the store %d times, want once", n)
	}
	want := `# HELP tentacle_server_tasks help
# TYPE tentacle_server_tasks gauge
tentacle_server_tasks{state="accepted"} 0
tentacle_server_tasks{state="assigned"} 0
tentacle_server_tasks{state="cancelled"} 0
tentacle_server_tasks{state="failed"} 0
tentacle_server_tasks{state="pulling"} 0
tentacle_server_tasks{state="queued"} 2
tentacle_server_tasks{state="starting"} 0
tentacle_server_tasks{state="succeeded"} 5
tentacle_server_tasks{state="verifying"} 0
tentacle_server_tasks{state="waiting"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// TestStoreThatHangsFailsOnlyItsSeries: a store that does not answer makes
// its series fail within countsTimeout; the rest of the scrape is served.
func TestStoreThatHangsFailsOnlyItsSeries(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newStateCollector("tentacle_server_targets", "help", targetStateNames,
			func(ctx context.Context) (map[tentaclev1.TargetHealthState]int, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "other", Help: "help"}, func() float64 { return 1 }),
	)
	mfs, err := reg.Gather()
	if err == nil || !strings.Contains(err.Error(), "tentacle_server_targets: context deadline exceeded") {
		t.Errorf("gather error %v, want one naming tentacle_server_targets and the timeout", err)
	}
	if len(mfs) != 1 || mfs[0].GetName() != "other" {
		t.Errorf("gathered %v, want the other series only", mfs)
	}
}

// TestHandshakeRefusalsAreCounted: a session refused with a retry hint
// shows in tentacle_server_handshakes_refused_total.
func TestHandshakeRefusalsAreCounted(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := adminClient(t, s, s.BootstrapToken)
	c.CreateEnvironment(ctxT(t), &tentaclev1.CreateEnvironmentRequest{Name: "prod"})
	_, certPEM, keyPEM := enrollRaw(t, s, c, "prod")
	ac, _ := agentConn(t, s, certPEM, keyPEM)
	refused := func() float64 { return gathered(t, s.metrics.reg, "tentacle_server_handshakes_refused_total") }
	if n := refused(); n != 0 {
		t.Fatalf("%v refusals before any", n)
	}
	s.refuseNewSessions()
	if _, r := tryConnect(t, ac); r == nil {
		t.Fatal("session let in during shutdown")
	}
	if n := refused(); n != 1 {
		t.Errorf("%v refusals counted, want 1", n)
	}
}

// TestTaskDurationNeedsTheAccept: a final event is counted by outcome and
// failure kind; its duration is observed only when this server saw the
// accept (after a restart it did not, and a guess would skew the
// histogram).
func TestTaskDurationNeedsTheAccept(t *testing.T) {
	t.Parallel()
	m := newMetrics(startServer(t))
	m.taskAccepted("t1", time.Time{})
	m.taskFinished(store.TaskEvent{TaskID: "t1", State: store.TaskSucceeded})
	m.taskFinished(store.TaskEvent{TaskID: "t2", State: store.TaskFailed, FailureKind: "image_not_found"})
	if n := testutil.ToFloat64(m.finished.WithLabelValues("failed", "image_not_found")); n != 1 {
		t.Errorf("failed/image_not_found: %v, want 1", n)
	}
	if n := testutil.ToFloat64(m.finished.WithLabelValues("succeeded", "")); n != 1 {
		t.Errorf("succeeded: %v, want 1", n)
	}
	want := map[string]uint64{"succeeded": 1, "failed": 0}
	for outcome, n := range want {
		h := m.duration.WithLabelValues(outcome).(prometheus.Histogram)
		if got := histogramCount(t, h); got != n {
			t.Errorf("duration{outcome=%q}: %d observations, want %d", outcome, got, n)
		}
	}
	if got := histogramCount(t, m.dispatch); got != 0 {
		t.Errorf("dispatch: %d observations of a task not sent on this session, want 0", got)
	}
	if len(m.accepted) != 0 {
		t.Errorf("%d accepted tasks still remembered after their final event", len(m.accepted))
	}
}

func histogramCount(t *testing.T, h prometheus.Histogram) uint64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	h.Collect(ch)
	var pb dto.Metric
	if err := (<-ch).Write(&pb); err != nil {
		t.Fatal(err)
	}
	return pb.GetHistogram().GetSampleCount()
}

// gathered is the value of the one series of the counter or gauge name.
func gathered(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no single series %s", name)
	return 0
}
