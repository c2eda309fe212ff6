package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tentacle-deploy/tentacle/agent"
	"github.com/tentacle-deploy/tentacle/internal/fleet"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
	"github.com/tentacle-deploy/tentacle/server"
)

// scrape is one parsed GET of a /metrics endpoint.
type scrape map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T, addr string) scrape {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// value is the value of the series name{labels} ("k=v" pairs): a counter's
// or gauge's value, a histogram's observation count; -1 when absent.
func (s scrape) value(name string, labels ...string) float64 {
	mf, ok := s[name]
	if !ok {
		return -1
	}
	want := map[string]string{}
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		want[k] = v
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM:
			return float64(m.GetHistogram().GetSampleCount())
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue()
		default:
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

// sum adds the values of every series of name.
func (s scrape) sum(name string) float64 {
	var n float64
	for _, m := range s[name].GetMetric() {
		n += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return n
}

// waitScrape scrapes addr until cond holds (20 s at most) and returns
// that scrape.
func waitScrape(t *testing.T, addr, what string, cond func(scrape) bool) scrape {
	t.Helper()
	var s scrape
	waitFor(t, what, 20*time.Second, func() bool { s = scrapeMetrics(t, addr); return cond(s) })
	return s
}

// TestServerMetricsAfterADeployment drives a deployment through three real
// agent sessions (enrollment and mTLS; a simulated engine) and checks every
// series an operator alerts on against what happened.
func TestServerMetricsAfterADeployment(t *testing.T) {
	t.Parallel()
	const agents = 3
	c := startClusterWith(t, server.Config{DataDir: t.TempDir(), HTTPListen: "127.0.0.1:0"})
	addr := c.srv.ProbeAddr()
	c.setupApp("metrics", "web")
	tok, err := c.admin.CreateJoinToken(c.ctx(), &tentaclev1.CreateJoinTokenRequest{Environment: "metrics", Ttl: durationpb.New(time.Hour), Uses: agents})
	if err != nil {
		t.Fatal(err)
	}
	f, err := fleet.Start(c.ctx(), fleet.Config{Server: c.addr, JoinToken: tok.GetToken(), Agents: agents, Dir: t.TempDir(), Log: testLogger(t).Named("agent")})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	waitScrape(t, addr, "3 sessions", func(s scrape) bool { return s.value("tentacle_server_sessions") == agents })

	id := c.deploy("metrics", "web", "1.0")
	if st := waitDeployment(t, c, id, time.Minute).GetDeployment().GetState(); st != tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED {
		t.Fatalf("deployment ended %v", st)
	}
	// The tasks' and targets' counts are cached for 10 s and the logs
	// arrive after the final event: wait for all three.
	s := waitScrape(t, addr, "tasks counted and logs stored", func(s scrape) bool {
		return s.value("tentacle_server_tasks", "state=succeeded") == agents && s.value("tentacle_server_targets", "state=unavailable") == 0 &&
			s.value("tentacle_server_task_log_bytes_total") > 0
	})
	for _, check := range []struct {
		what string
		got  float64
		ok   func(float64) bool
		want string
	}{
		{"sessions", s.value("tentacle_server_sessions"), eq(agents), "3"},
		{"targets unavailable", s.value("tentacle_server_targets", "state=unavailable"), eq(0), "0"},
		{"targets in any state", s.sum("tentacle_server_targets"), eq(agents), "3"},
		{"tasks in any state", s.sum("tentacle_server_tasks"), eq(agents), "3 (all succeeded)"},
		{"tasks queued", s.value("tentacle_server_tasks", "state=queued"), eq(0), "0"},
		{"dispatch observations", s.value("tentacle_server_task_dispatch_seconds"), atLeast(agents), ">= 3"},
		{"durations of succeeded tasks", s.value("tentacle_server_task_duration_seconds", "outcome=succeeded"), eq(agents), "3"},
		{"tasks finished", s.value("tentacle_server_tasks_finished_total", "outcome=succeeded", "failure_kind="), eq(agents), "3"},
		{"log bytes", s.value("tentacle_server_task_log_bytes_total"), atLeast(float64(agents * len("simulated container of web started\n"))), ">= 3 log lines"},
		{"handshakes refused", s.value("tentacle_server_handshakes_refused_total"), eq(0), "0"},
		{"enrollments over gRPC", s.value("grpc_server_handled_total", "grpc_method=Enroll", "grpc_code=OK"), eq(agents), "3"},
		{"deployments created over gRPC", s.value("grpc_server_handled_total", "grpc_method=CreateDeployment", "grpc_code=OK"), eq(1), "1"},
		{"gRPC handling time", s.value("grpc_server_handling_seconds", "grpc_method=CreateDeployment"), eq(1), "1 observation"},
		{"goroutines", s.value("go_goroutines"), atLeast(1), "> 0"},
		{"open fds", s.value("process_open_fds"), atLeast(1), "> 0"},
	} {
		if !check.ok(check.got) {
			t.Errorf("%s: %v, want %s", check.what, check.got, check.want)
		}
	}

	f.Stop()
	waitScrape(t, addr, "no sessions and every target unavailable once the agents stopped", func(s scrape) bool {
		return s.value("tentacle_server_sessions") == 0 && s.value("tentacle_server_targets", "state=unavailable") == agents
	})
}

func eq(want float64) func(float64) bool      { return func(got float64) bool { return got == want } }
func atLeast(want float64) func(float64) bool { return func(got float64) bool { return got >= want } }

// TestAgentMetricsFollowTheSession: an agent with metrics_addr serves
// /metrics; its session gauge is 1 while connected and 0 once the server
// is gone, and a finished task is counted.
func TestAgentMetricsFollowTheSession(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := startCluster(t, t.TempDir(), "")
	c.setupApp("metrics", "web")
	c.enroll("metrics", dir)
	m := runAgentWithMetrics(t, dir)
	addr := m.Addr()

	waitScrape(t, addr, "session connected", func(s scrape) bool { return s.value("tentacle_agent_session_connected") == 1 })
	id := c.deploy("metrics", "web", "1.0")
	if st := waitDeployment(t, c, id, time.Minute).GetDeployment().GetState(); st != tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED {
		t.Fatalf("deployment ended %v", st)
	}
	s := waitScrape(t, addr, "task counted and its log acknowledged", func(s scrape) bool {
		return s.value("tentacle_agent_tasks_finished_total", "outcome=succeeded") == 1 && s.value("tentacle_agent_log_spool_bytes") == 0
	})
	for name, want := range map[string]float64{
		"tentacle_agent_tasks_running":    0,
		"tentacle_agent_docker_engine_up": 1,
	} {
		if got := s.value(name); got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
	if got := s.value("tentacle_agent_tasks_finished_total", "outcome=failed"); got != 0 {
		t.Errorf("failed tasks: %v, want 0", got)
	}
	if s.value("go_goroutines") <= 0 || s.value("process_open_fds") <= 0 {
		t.Error("the Go and process collectors are missing")
	}

	c.stop()
	waitScrape(t, addr, "session gone with the server", func(s scrape) bool { return s.value("tentacle_agent_session_connected") == 0 })
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(fmt.Sprintf("http://%s/metrics", addr)); err == nil {
		t.Error("/metrics still served after Close")
	}
}

// runAgentWithMetrics runs the enrolled agent in dir, on a simulated
// engine, with its /metrics on a free loopback port, until the test ends.
func runAgentWithMetrics(t *testing.T, dir string) *agent.MetricsServer {
	t.Helper()
	a, err := agent.New(agent.Config{DataDir: dir}, fleet.NewEngine(), testLogger(t).Named("agent"))
	if err != nil {
		t.Fatal(err)
	}
	a.SetStopGrace(time.Second)
	m, err := a.ServeMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; m.Close() })
	return m
}
