package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/tentacle-deploy/tentacle/internal/probehttp"
)

const metricsPrefix = "tentacle_agent_"

// How often a scrape may ask the Docker engine whether it answers, and
// how long it waits: a scrape must stay cheap and quick.
const (
	engineCheckTTL     = 15 * time.Second
	engineCheckTimeout = 2 * time.Second
)

// CheckMetricsAddr checks a metrics_addr: HOST:PORT, or :PORT for every
// interface. It returns what is wrong without naming the setting, "" when
// the address is valid or empty.
func CheckMetricsAddr(s string) string { return checkHostPort(s, true) }

// MetricsServer serves the agent's /metrics over plain HTTP: the series
// carry no secrets, and the agent takes no input through it.
type MetricsServer struct {
	lis  net.Listener
	http *http.Server
	done chan struct{}
}

// ServeMetrics starts serving the agent's /metrics on addr (metrics_addr)
// until Close (the config has checked it: see CheckMetricsAddr). The
// series are on a registry of the agent's own.
func (a *Agent) ServeMetrics(addr string) (*MetricsServer, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics_addr %s: %w (use another HOST:PORT, or leave it empty to serve no metrics)", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", probehttp.MetricsHandler(a.metricsRegistry(), a.log))
	m := &MetricsServer{lis: lis, done: make(chan struct{}), http: probehttp.NewServer(mux, a.log)}
	go func() {
		defer close(m.done)
		if err := m.http.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("metrics listener", zap.Error(err))
		}
	}()
	a.log.Info("serving metrics over plain HTTP", zap.String("addr", m.Addr()))
	return m, nil
}

// Addr is the address /metrics is served on.
func (m *MetricsServer) Addr() string { return m.lis.Addr().String() }

// Close stops serving and waits for the listener to end.
func (m *MetricsServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := m.http.Shutdown(ctx)
	if err != nil {
		err = m.http.Close()
	}
	<-m.done
	return err
}

func (a *Agent) metricsRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: metricsPrefix + "session_connected",
			Help: "1 while the agent has an established session with the server, else 0.",
		}, func() float64 { return boolValue(a.Connected()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: metricsPrefix + "tasks_running",
			Help: "Tasks accepted and not yet finished (running, or waiting for their application's previous task).",
		}, func() float64 { return float64(len(a.journal.Unfinished())) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: metricsPrefix + "log_spool_bytes",
			Help: "Task log bytes spooled on disk that the server has not yet acknowledged.",
		}, func() float64 {
			var n uint64
			for _, l := range a.journal.LogsToPush() {
				n += l.Size - l.Acked
			}
			return float64(n)
		}),
		newFinishedCollector(a),
		&engineCollector{a: a, desc: prometheus.NewDesc(metricsPrefix+"docker_engine_up",
			"1 when the Docker engine answered its last check (at most every 15 s), else 0.", nil, nil)},
	)
	return reg
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// finishedCollector counts the tasks that reached a final event while this
// process ran, by outcome. The journal is the source: a task is counted the
// first time a scrape sees it finished; the tasks already finished when
// metrics started are not.
type finishedCollector struct {
	a    *Agent
	desc *prometheus.Desc

	mu     sync.Mutex
	seen   map[string]bool // finished task ids still in the journal
	counts map[string]float64
}

func newFinishedCollector(a *Agent) *finishedCollector {
	c := &finishedCollector{a: a, seen: map[string]bool{}, counts: map[string]float64{},
		desc: prometheus.NewDesc(metricsPrefix+"tasks_finished_total", "Tasks finished since the agent started, by outcome.", []string{"outcome"}, nil)}
	for _, h := range a.journal.Held() {
		if h.Finished {
			c.seen[h.TaskID] = true
		}
	}
	for _, outcome := range []string{stateSucceeded, stateFailed, stateCancelled} {
		c.counts[outcome] = 0
	}
	return c
}

func (c *finishedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *finishedCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	held := c.a.journal.Held()
	inJournal := make(map[string]bool, len(held))
	for _, h := range held {
		inJournal[h.TaskID] = true
		if !h.Finished || c.seen[h.TaskID] {
			continue
		}
		c.seen[h.TaskID] = true
		if evs := c.a.journal.EventsAfter(h.TaskID, h.LastSeq-1); len(evs) > 0 {
			c.counts[evs[len(evs)-1].State]++
		}
	}
	// The journal prunes old tasks: forget them so the set stays small.
	for id := range c.seen {
		if !inJournal[id] {
			delete(c.seen, id)
		}
	}
	for outcome, n := range c.counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, n, outcome)
	}
}

// engineCollector asks the runner for the engine's version, at most every
// engineCheckTTL and for at most engineCheckTimeout.
type engineCollector struct {
	a    *Agent
	desc *prometheus.Desc

	mu        sync.Mutex
	checkedAt time.Time
	up        bool
}

func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.checkedAt.IsZero() || time.Since(c.checkedAt) >= engineCheckTTL {
		ctx, cancel := context.WithTimeout(context.Background(), engineCheckTimeout)
		_, err := c.a.runner.EngineVersion(ctx)
		cancel()
		c.up, c.checkedAt = err == nil, time.Now()
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, boolValue(c.up))
}
