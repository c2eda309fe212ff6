package server

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
	"github.com/tentacle-deploy/tentacle/server/store"
)

// Every series of the server's own starts with this; docs/_metrics.md
// lists them. The gRPC series keep the grpc_server_ names that existing
// dashboards know.
const metricsPrefix = "tentacle_server_"

// Bounds of what a scrape may cost: counts read from the store are reused
// for countsTTL, and a store that does not answer within countsTimeout
// makes the series fail for this scrape instead of holding it up.
const (
	countsTTL     = 10 * time.Second
	countsTimeout = time.Second
)

// maxTimedTasks bounds the accepted tasks whose start the metrics
// remember for the duration histogram: a task the server ends itself
// (deadline, cancel) sends no final event and would otherwise stay.
const maxTimedTasks = 100_000

// metrics holds the server's series on a registry of its own (never the
// process-wide default, so two servers in one test process do not clash).
type metrics struct {
	reg  *prometheus.Registry
	grpc *grpcprom.ServerMetrics

	dispatch    prometheus.Histogram
	duration    *prometheus.HistogramVec
	finished    *prometheus.CounterVec
	logBytes    prometheus.Counter
	deployments *prometheus.CounterVec

	mu       sync.Mutex
	accepted map[string]time.Time // task id → when its agent accepted it
}

// TargetStatesFunc counts the targets by health state.
type TargetStatesFunc func(ctx context.Context) (map[tentaclev1.TargetHealthState]int, error)

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		grpc: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets([]float64{.001, .005, .025, .1, .5, 2.5, 10, 60, 600, 3600}))),
		dispatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    metricsPrefix + "task_dispatch_seconds",
			Help:    "Time from the server sending a task to its agent to the agent accepting it (journaled).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    metricsPrefix + "task_duration_seconds",
			Help:    "Time from the agent accepting a task to its final event, by outcome.",
			Buckets: []float64{.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600},
		}, []string{"outcome"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricsPrefix + "tasks_finished_total",
			Help: "Tasks whose agent reported a final event, by outcome and failure kind (empty unless failed).",
		}, []string{"outcome", "failure_kind"}),
		logBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: metricsPrefix + "task_log_bytes_total",
			Help: "Task log bytes received from agents and stored (after masking).",
		}),
		deployments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricsPrefix + "deployments_created_total",
			Help: "Deployments created, by kind.",
		}, []string{"kind"}),
		accepted: map[string]time.Time{},
	}
	// Series that exist from the start: rate() and increase() see the
	// first event, and a dashboard shows 0 rather than nothing.
	for _, kind := range []string{store.KindDeploy, store.KindMissing, store.KindRollback, store.KindAuto} {
		m.deployments.WithLabelValues(kind)
	}
	for _, outcome := range []store.TaskState{store.TaskSucceeded, store.TaskFailed, store.TaskCancelled} {
		m.finished.WithLabelValues(string(outcome), "")
		m.duration.WithLabelValues(string(outcome))
	}
	for kind := range failureKinds {
		m.finished.WithLabelValues(string(store.TaskFailed), kind)
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.grpc, m.dispatch, m.duration, m.finished, m.logBytes, m.deployments,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: metricsPrefix + "sessions",
			Help: "Agent sessions connected now.",
		}, func() float64 { return float64(s.sessions.count()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: metricsPrefix + "handshakes_refused_total",
			Help: "Agent sessions refused with a retry hint (too many handshakes at once, or shutting down).",
		}, func() float64 { return float64(s.handshakes.refusedTotal.Load()) }),
		newStateCollector(metricsPrefix+"tasks", "Stored tasks by state (read at most every 10 s).",
			taskStateNames, s.store.CountTasksByState),
		newStateCollector(metricsPrefix+"targets", "Enrolled, unrevoked targets by health state (read at most every 10 s).",
			targetStateNames, func(ctx context.Context) (map[tentaclev1.TargetHealthState]int, error) {
				return s.TargetStates(ctx)
			}),
	)
	return m
}

// countDeploymentCreated counts a new deployment of kind (store.KindDeploy,
// KindMissing, KindRollback or KindAuto: never user input).
func (s *Server) countDeploymentCreated(kind string) {
	s.metrics.deployments.WithLabelValues(kind).Inc()
}

// taskAccepted is the hook for TaskAccepted: sentAt is when this session sent
// the task (zero when it did not: the accept is then not timed).
func (m *metrics) taskAccepted(taskID string, sentAt time.Time) {
	now := time.Now()
	if !sentAt.IsZero() {
		m.dispatch.Observe(now.Sub(sentAt).Seconds())
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.accepted) < maxTimedTasks {
		m.accepted[taskID] = now
	}
}

// taskFinished is the hook for a task's first final event.
func (m *metrics) taskFinished(e store.TaskEvent) {
	outcome := string(e.State)
	m.finished.WithLabelValues(outcome, e.FailureKind).Inc()
	m.mu.Lock()
	at, ok := m.accepted[e.TaskID]
	delete(m.accepted, e.TaskID)
	m.mu.Unlock()
	if ok {
		m.duration.WithLabelValues(outcome).Observe(time.Since(at).Seconds())
	}
}

// logStored is the hook for a stored log chunk. A chunk the agent resends
// after a lost acknowledgement counts again; that is rare and small.
func (m *metrics) logStored(data []byte) { m.logBytes.Add(float64(len(data))) }

// sentAt is when the task was last sent on this session and not yet
// acknowledged; zero if it was not.
func (s *session) sentAt(taskID string) time.Time {
	s.unackedMu.Lock()
	defer s.unackedMu.Unlock()
	return s.unacked[taskID]
}

// count is the number of connected sessions.
func (ss *sessions) count() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.byTarget)
}

var taskStateNames = map[store.TaskState]string{
	store.TaskWaiting: "waiting", store.TaskQueued: "queued", store.TaskAssigned: "assigned",
	store.TaskAccepted: "accepted", store.TaskPulling: "pulling", store.TaskStarting: "starting",
	store.TaskVerifying: "verifying", store.TaskSucceeded: "succeeded", store.TaskFailed: "failed",
	store.TaskCancelled: "cancelled",
}

// targetStateNames are the health states' label values: the enum's names
// in lower case without the prefix ("healthy", …).
var targetStateNames = func() map[tentaclev1.TargetHealthState]string {
	out := map[tentaclev1.TargetHealthState]string{}
	for v, name := range tentaclev1.TargetHealthState_name {
		if v != 0 {
			out[tentaclev1.TargetHealthState(v)] = strings.ToLower(strings.TrimPrefix(name, "TARGET_HEALTH_STATE_"))
		}
	}
	return out
}()

// stateCollector is a gauge per state, counted by a function that may hit
// the store: the counts are cached for countsTTL and each read is bounded
// by countsTimeout. Every known state is reported, 0 when nothing is in
// it, so an alert can compare against 0.
type stateCollector[K comparable] struct {
	name  string
	desc  *prometheus.Desc
	names map[K]string
	count func(context.Context) (map[K]int, error)

	mu     sync.Mutex
	readAt time.Time
	counts map[K]int
}

func newStateCollector[K comparable](name, help string, names map[K]string, count func(context.Context) (map[K]int, error)) *stateCollector[K] {
	return &stateCollector[K]{name: name, names: names, count: count,
		desc: prometheus.NewDesc(name, help, []string{"state"}, nil)}
}

func (c *stateCollector[K]) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *stateCollector[K]) Collect(ch chan<- prometheus.Metric) {
	counts, err := c.read()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for k, name := range c.names {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[k]), name)
	}
}

func (c *stateCollector[K]) read() (map[K]int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts != nil && time.Since(c.readAt) < countsTTL {
		return c.counts, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), countsTimeout)
	defer cancel()
	counts, err := c.count(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.name, err)
	}
	c.counts, c.readAt = counts, time.Now()
	return counts, nil
}
