package e2e

import (
	"context"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tentacle-deploy/tentacle/internal/fleet"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
	"github.com/tentacle-deploy/tentacle/server"
)

// stormAgents is how many simulated agents TestReconnectStorm runs: 200 in
// `make test`; TENTACLE_STORM_AGENTS=1000 (or more) for a measurement.
func stormAgents(t *testing.T) int {
	v := os.Getenv("TENTACLE_STORM_AGENTS")
	if v == "" {
		return 200
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("TENTACLE_STORM_AGENTS=%q: want a positive number", v)
	}
	return n
}

// stormHandshakes is the restarted server's handshake limit: 1 by default,
// so that even 200 agents meet the limiter and its refusals and the agents'
// answer to them are checked; TENTACLE_STORM_MAX_HANDSHAKES=0 measures with
// the server's default limit instead.
func stormHandshakes(t *testing.T) (limit int, tight bool) {
	v := os.Getenv("TENTACLE_STORM_MAX_HANDSHAKES")
	if v == "" {
		return 1, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("TENTACLE_STORM_MAX_HANDSHAKES=%q: want 0 (the server's default) or more", v)
	}
	return n, false
}

// TestReconnectStorm restarts the server under a fleet of agents (real
// enrollment, mTLS and agent sessions; a simulated engine) and checks that
// every session comes back, none of the agents gave up, and a deployment
// to all of them then runs every task exactly once. Times are logged, not
// asserted.
func TestReconnectStorm(t *testing.T) {
	t.Parallel()
	n := stormAgents(t)
	limit, tight := stormHandshakes(t)
	// Generous: a loaded CI machine under the race detector is slow, and
	// nothing here measures speed.
	patience := max(3*time.Minute, time.Duration(n)*300*time.Millisecond)
	dataDir := t.TempDir()
	serverLog := newLogCounter()
	c := startClusterLogged(t, server.Config{DataDir: dataDir, Listen: "127.0.0.1:0"}, serverLog.logger(t, "server"))
	c.setupApp("storm", "web")
	tok, err := c.admin.CreateJoinToken(c.ctx(), &tentaclev1.CreateJoinTokenRequest{Environment: "storm", Ttl: durationpb.New(time.Hour), Uses: int32(n)})
	if err != nil {
		t.Fatal(err)
	}

	agentLog := newLogCounter()
	enrollStart := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	f, err := fleet.Start(ctx, fleet.Config{Server: c.addr, JoinToken: tok.GetToken(), Agents: n, Dir: t.TempDir(), Log: agentLog.logger(t, "agent")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	waitConnected(t, c, n, patience)
	t.Logf("%d agents enrolled and connected in %s", n, time.Since(enrollStart).Round(time.Millisecond))

	stopped := time.Now()
	c.stop()
	down := time.Now()
	restartLog := newLogCounter()
	c2 := startClusterLogged(t, server.Config{DataDir: dataDir, Listen: c.addr, MaxHandshakes: limit}, restartLog.logger(t, "server"))
	serving := time.Now()
	waitConnected(t, c2, n, patience)
	back := time.Now()
	t.Logf("server restart under %d agents: stopped in %s, serving again after %s, all %d sessions back %s after that (%s after the stop began)",
		n, down.Sub(stopped).Round(time.Millisecond), serving.Sub(stopped).Round(time.Millisecond), n,
		back.Sub(serving).Round(time.Millisecond), back.Sub(stopped).Round(time.Millisecond))
	if live, running := f.Live(), f.Running(); live != n || running != n {
		t.Fatalf("after the restart %d agents have a session and %d still run; want %d of each (none gave up)", live, running, n)
	}
	refusals, early := restartLog.earlyReturns()
	t.Logf("the restarted server (handshake limit %d, 0: its default) refused %d handshakes with a retry hint; the agents saw %d refusals",
		limit, refusals, agentLog.count(msgAgentRetry, codes.ResourceExhausted))
	if tight && refusals == 0 {
		t.Errorf("with a handshake limit of %d, %d agents reconnecting met no refusal", limit, n)
	}
	if early > 0 {
		t.Errorf("%d of %d refused agents dialled again before the retry hint passed", early, refusals)
	}
	t.Logf("log of the first server: %s", serverLog)
	t.Logf("log of the restarted server: %s", restartLog)
	t.Logf("agent log: %s", agentLog)

	id := c2.deploy("storm", "web", "1.0")
	final := waitDeployment(t, c2, id, patience)
	if s := final.GetDeployment().GetState(); s != tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED {
		t.Fatalf("deployment to %d agents after the restart ended %v", n, s)
	}
	if got := len(final.GetTasks()); got != n {
		t.Fatalf("deployment has %d tasks, want %d", got, n)
	}
	for _, task := range final.GetTasks() {
		if runs := f.Engine().Runs(task.GetId()); runs != 1 || task.GetState() != tentaclev1.TaskState_TASK_STATE_SUCCEEDED {
			t.Fatalf("task %s on %s: %v, ran %d times; want succeeded, once", task.GetId(), task.GetTargetName(), task.GetState(), runs)
		}
	}
	if runs := len(f.Engine().AllRuns()); runs != n {
		t.Fatalf("the engine ran %d distinct tasks, want %d", runs, n)
	}
	t.Logf("deployment to %d agents finished in %s", n, time.Since(back).Round(time.Millisecond))
	if hwm := peakRSS(); hwm != "" {
		t.Logf("peak RSS of the test process (server and %d agents): %s", n, hwm)
	}
}

// waitConnected waits until the server counts n connected targets.
func waitConnected(t *testing.T, c *cluster, n int, d time.Duration) {
	t.Helper()
	last := 0
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		resp, err := c.admin.ListTargets(ctx, &tentaclev1.ListTargetsRequest{})
		cancel()
		if err == nil {
			last = 0
			for _, tg := range resp.GetTargets() {
				if tg.GetConnected() {
					last++
				}
			}
			if last == n {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s %d of %d targets are connected (last error: %v)", d, last, n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitDeployment polls the deployment until it is no longer running.
func waitDeployment(t *testing.T, c *cluster, id string, d time.Duration) *tentaclev1.GetDeploymentResponse {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		got, err := c.admin.GetDeployment(ctx, &tentaclev1.GetDeploymentRequest{Id: id})
		cancel()
		if err != nil {
			t.Fatalf("deployment %s: %v", id, err)
		}
		if s := got.GetDeployment().GetState(); s != tentaclev1.DeploymentState_DEPLOYMENT_STATE_RUNNING &&
			s != tentaclev1.DeploymentState_DEPLOYMENT_STATE_UNSPECIFIED {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("deployment %s still running after %s", id, d)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// peakRSS is the process's peak resident set (VmHWM), where Linux tells it.
func peakRSS() string {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ""
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// logCounter counts log entries by message, and by message and gRPC code
// when an entry carries an error with one: how a test sees how often the
// server refused a handshake or an agent backed off, without keeping every
// entry of a thousand agents in memory. It also keeps, per target, when the
// server let a session in or refused it and the retry hint it gave.
type logCounter struct {
	mu       sync.Mutex
	n        map[string]int
	sessions map[string][]sessionEntry // target id → admissions and refusals, in order
}

type sessionEntry struct {
	at         time.Time
	refused    bool
	retryAfter time.Duration
}

// The server's log messages for a session let in and one refused by the
// handshake limiter.
const (
	msgConnected = "agent connected"
	msgRefused   = "session refused: too many handshakes"
	// The agent's, when a session ends or is refused.
	msgAgentRetry = "session ended, reconnecting"
)

func newLogCounter() *logCounter {
	return &logCounter{n: map[string]int{}, sessions: map[string][]sessionEntry{}}
}

// logger counts every entry and passes warnings and errors to the test log.
func (lc *logCounter) logger(t *testing.T, name string) *zap.Logger {
	shown := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Core()
	return zap.New(zapcore.NewTee(shown, countingCore{lc: lc})).Named(name)
}

// count is the number of entries with message msg, and with gRPC code
// code when it is not OK.
func (lc *logCounter) count(msg string, code codes.Code) int {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if code == codes.OK {
		return lc.n[msg]
	}
	return lc.n[msg+" ["+code.String()+"]"]
}

// earlyReturns counts the refusals with a retry hint after which the same
// target came back (refused again or let in) before the hint had passed:
// an agent that ignored it. Each entry is logged after the agent dialled,
// and the refusal before the agent read the hint, so an agent that waits
// as told is never counted.
func (lc *logCounter) earlyReturns() (refusals, early int) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	for _, entries := range lc.sessions {
		for i, e := range entries {
			if !e.refused || e.retryAfter <= 0 {
				continue
			}
			refusals++
			// The trailer carries whole milliseconds.
			if i+1 < len(entries) && entries[i+1].at.Sub(e.at) < e.retryAfter.Truncate(time.Millisecond) {
				early++
			}
		}
	}
	return refusals, early
}

func (lc *logCounter) String() string {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	keys := make([]string, 0, len(lc.n))
	for k := range lc.n {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString("\n\t" + strconv.Itoa(lc.n[k]) + " × " + k)
	}
	return b.String()
}

type countingCore struct {
	lc     *logCounter
	fields []zapcore.Field
}

func (countingCore) Enabled(zapcore.Level) bool { return true }
func (countingCore) Sync() error                { return nil }

func (cc countingCore) With(fields []zapcore.Field) zapcore.Core {
	return countingCore{lc: cc.lc, fields: append(slices.Clip(cc.fields), fields...)}
}

func (cc countingCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	return ce.AddCore(e, cc)
}

func (cc countingCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	cc.lc.mu.Lock()
	defer cc.lc.mu.Unlock()
	cc.lc.n[e.Message]++
	var target string
	var retryAfter time.Duration
	for _, f := range append(slices.Clip(cc.fields), fields...) {
		switch {
		case f.Type == zapcore.ErrorType:
			if err, ok := f.Interface.(error); ok {
				if code := status.Code(err); code != codes.OK && code != codes.Unknown {
					cc.lc.n[e.Message+" ["+code.String()+"]"]++
				}
			}
		case f.Key == "target_id" && f.Type == zapcore.StringType:
			target = f.String
		case f.Key == "retry_after" && f.Type == zapcore.DurationType:
			retryAfter = time.Duration(f.Integer)
		}
	}
	if target != "" && (e.Message == msgConnected || e.Message == msgRefused) {
		cc.lc.sessions[target] = append(cc.lc.sessions[target], sessionEntry{at: e.Time, refused: e.Message == msgRefused, retryAfter: retryAfter})
	}
	return nil
}
