package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// nextStartTail reads the session until the server asks for a tail.
func nextStartTail(t *testing.T, stream tentaclev1.AgentService_ConnectClient) *tentaclev1.StartTail {
	t.Helper()
	for {
		if st := recvNext(t, stream).GetStartTail(); st != nil {
			return st
		}
	}
}

// agentTail is a StreamTail call opened as an agent; ended receives the
// error the server ends it with (its one Recv runs all along).
type agentTail struct {
	tentaclev1.AgentService_StreamTailClient
	ended chan error
}

// openTail opens StreamTail as an agent with first as its first message and
// returns the call, and the error the server ends it with if it does within
// a second.
func openTail(t *testing.T, ac tentaclev1.AgentServiceClient, first *tentaclev1.StreamTailRequest) (*agentTail, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := ac.StreamTail(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(first); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	a := &agentTail{AgentService_StreamTailClient: st, ended: make(chan error, 1)}
	go func() {
		_, err := st.Recv()
		a.ended <- err
	}()
	select {
	case err := <-a.ended:
		return a, err
	case <-time.After(time.Second):
		return a, nil
	}
}

// recvTail reads the admin's tail until target's last message (ended or
// error) and returns the data and that message.
func recvTail(t *testing.T, stream tentaclev1.AdminService_TailLogsClient, target string) (string, *tentaclev1.TailLogsResponse) {
	t.Helper()
	var data strings.Builder
	for {
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("tail of %s: %v", target, err)
		}
		if m.GetTarget() != target {
			t.Fatalf("message of %s while waiting for %s: %v", m.GetTarget(), target, m)
		}
		data.Write(m.GetData())
		if m.GetEnded() != "" || m.GetError() != "" {
			return data.String(), m
		}
	}
}

// webInProd starts a server with application web and one target enrolled
// in prod, whose certificate and key it returns.
func webInProd(t *testing.T) (*Server, tentaclev1.AdminServiceClient, context.Context, []byte, []byte) {
	t.Helper()
	s := startServer(t)
	c := adminClient(t, s, s.BootstrapToken)
	ctx := ctxT(t)
	_, cert, key := enrollRaw(t, s, c, "prod")
	if _, err := c.CreateApplication(ctx, &tentaclev1.CreateApplicationRequest{Name: "web", ImageRepository: "r.example.com/web"}); err != nil {
		t.Fatal(err)
	}
	return s, c, ctx, cert, key
}

// TestTailLogsRejectsBadInput calls as a viewer: reading logs, live or
// not, is a viewer's right.
func TestTailLogsRejectsBadInput(t *testing.T) {
	t.Parallel()
	s, root, ctx, _, _ := webInProd(t)
	root.CreateEnvironment(ctx, &tentaclev1.CreateEnvironmentRequest{Name: "empty"})
	viewer, err := root.CreateAdminToken(ctx, &tentaclev1.CreateAdminTokenRequest{Name: "viewer", Role: RoleViewer})
	if err != nil {
		t.Fatal(err)
	}
	c := adminClient(t, s, viewer.GetToken())
	for _, tc := range []struct {
		name string
		req  *tentaclev1.TailLogsRequest
		code codes.Code
		msg  string
	}{
		{"nothing", &tentaclev1.TailLogsRequest{}, codes.InvalidArgument, "application: required\nenvironment: required"},
		{"negative since and tail", &tentaclev1.TailLogsRequest{Application: "web", Environment: "prod", Since: durationpb.New(-time.Minute), TailLines: -3},
			codes.InvalidArgument, "since: -1m0s is negative: give how far back to start, e.g. 10m\ntail_lines: -3 is negative: use 0 for every line or N for the last N lines"},
		{"unknown application", &tentaclev1.TailLogsRequest{Application: "api", Environment: "prod"}, codes.NotFound, `application "api": not found`},
		{"unknown environment", &tentaclev1.TailLogsRequest{Application: "web", Environment: "qa"}, codes.NotFound, `environment "qa": not found`},
		{"environment without targets", &tentaclev1.TailLogsRequest{Application: "web", Environment: "empty"}, codes.FailedPrecondition,
			"environment \"empty\" has no targets: enroll one with `tentaclectl token create --env empty` and `tentacle enroll`"},
		{"unknown target", &tentaclev1.TailLogsRequest{Application: "web", Environment: "prod", Target: "db-1"}, codes.NotFound,
			"target: \"db-1\" is not a target of environment prod with the roles of web: see `tentaclectl targets`"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream, err := c.TailLogs(ctx, tc.req)
			if err == nil {
				_, err = stream.Recv()
			}
			wantStatus(t, err, tc.code, tc.msg)
		})
	}
}

// TestTailRefusesWhatIsNotTheAgents: an agent may only stream a tail the
// server asked of it, for a task of its own; the admin hears of a target
// that cannot be tailed and still gets the others, masked.
func TestTailRefusesWhatIsNotTheAgents(t *testing.T) {
	t.Parallel()
	s, c, ctx, certA, keyA := webInProd(t)
	_, certB, keyB := enrollRaw(t, s, c, "prod")
	enrollRaw(t, s, c, "prod") // never connects
	if _, err := c.SetVariable(ctx, setVar("web", "DB_PASSWORD", testSecret, true, nil)); err != nil {
		t.Fatal(err)
	}
	dep, acA, sessA, taskA := releaseAndReceive(t, s, c, certA, keyA)
	acB, _ := agentConn(t, s, certB, keyB)
	sessB, err := connect(t, acB, "i2")
	if err != nil {
		t.Fatal(err)
	}
	taskB := recvNext(t, sessB).GetAssign().GetTask()
	names := map[string]string{} // task → target
	for _, tk := range dep.GetTasks() {
		names[tk.GetId()] = tk.GetTargetName()
	}
	nameA, nameB := names[taskA.GetTaskId()], names[taskB.GetTaskId()]

	admin, err := c.TailLogs(ctx, &tentaclev1.TailLogsRequest{Application: "web", Environment: "prod", Follow: true, TailLines: 5})
	if err != nil {
		t.Fatal(err)
	}
	offline, err := admin.Recv()
	if err != nil || !strings.HasPrefix(offline.GetError(), "no session: ") {
		t.Fatalf("first message %v, %v; want the offline target's no session", offline, err)
	}
	stA, stB := nextStartTail(t, sessA), nextStartTail(t, sessB)
	if stA.GetApplication() != "web" || !stA.GetFollow() || stA.GetTailLines() != 5 {
		t.Errorf("StartTail = %v", stA)
	}

	t.Run("unknown tail id", func(t *testing.T) {
		_, err := openTail(t, acA, &tentaclev1.StreamTailRequest{TailId: "no-such-tail"})
		wantStatus(t, err, codes.NotFound, "tail no-such-tail: unknown or already ended")
	})
	t.Run("tail id of another target", func(t *testing.T) {
		_, err := openTail(t, acB, &tentaclev1.StreamTailRequest{TailId: stA.GetTailId()})
		wantStatus(t, err, codes.PermissionDenied, fmt.Sprintf("tail %s was not asked of this target", stA.GetTailId()))
	})
	t.Run("task of another target", func(t *testing.T) {
		_, err := openTail(t, acA, &tentaclev1.StreamTailRequest{TailId: stA.GetTailId(), TaskId: taskB.GetTaskId()})
		msg := fmt.Sprintf("task %s is not assigned to target %s", taskB.GetTaskId(), nameA)
		wantStatus(t, err, codes.PermissionDenied, msg)
		if _, last := recvTail(t, admin, nameA); last.GetError() != msg {
			t.Errorf("admin got %v, want the error %q", last, msg)
		}
		// The tail id is spent: it cannot be claimed again.
		_, err = openTail(t, acA, &tentaclev1.StreamTailRequest{TailId: stA.GetTailId(), TaskId: taskA.GetTaskId()})
		wantStatus(t, err, codes.NotFound, fmt.Sprintf("tail %s: unknown or already ended", stA.GetTailId()))
	})
	t.Run("own task: masked lines, then the end", func(t *testing.T) {
		st, err := openTail(t, acB, &tentaclev1.StreamTailRequest{TailId: stB.GetTailId(), TaskId: taskB.GetTaskId(), ContainerName: "web",
			Data: []byte("password is " + testSecret + "\n")})
		if err != nil {
			t.Fatal(err)
		}
		st.Send(&tentaclev1.StreamTailRequest{Data: []byte("again " + testSecret + "\n"), Ended: "container stopped"})
		data, last := recvTail(t, admin, nameB)
		stars := strings.Repeat("*", len(testSecret))
		if want := "password is " + stars + "\nagain " + stars + "\n"; data != want {
			t.Errorf("admin got %q, want %q", data, want)
		}
		if last.GetEnded() != "container stopped" {
			t.Errorf("last message %v, want ended: container stopped", last)
		}
	})
	if m, err := admin.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("after every target ended: %v, %v; want the end of the call", m, err)
	}
	if n := s.tails.pending(); n != 0 {
		t.Errorf("%d tails still registered after the call", n)
	}
}

// TestSlowTailReaderBoundsServerMemory: an agent that could send gigabytes
// a second and an admin that reads slowly. What the agent has sent and the
// admin not yet read (held by the server, gRPC windows and the kernel)
// stays under a bound; every line arrives once, in order; and when the
// admin leaves, the agent's stream is ended and nothing stays registered.
func TestSlowTailReaderBoundsServerMemory(t *testing.T) {
	t.Parallel()
	s, c, ctx, cert, key := webInProd(t)
	ac, _ := agentConn(t, s, cert, key)
	sess, err := connect(t, ac, "i1")
	if err != nil {
		t.Fatal(err)
	}
	actx, leave := context.WithCancel(ctx)
	defer leave()
	admin, err := c.TailLogs(actx, &tentaclev1.TailLogsRequest{Application: "web", Environment: "prod", Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	st := nextStartTail(t, sess)

	// The agent: 1 KiB lines numbered from 0, 63 to a message, sent as fast
	// as the stream takes them.
	const lineLen, perMsg = 1024, 63
	var produced atomic.Int64
	agentDone := make(chan error, 1)
	go func() {
		stream, err := ac.StreamTail(context.Background())
		if err != nil {
			agentDone <- err
			return
		}
		first := true
		for seq := 0; ; {
			var b bytes.Buffer
			for range perMsg {
				fmt.Fprintf(&b, "%010d %s\n", seq, strings.Repeat("x", lineLen-12))
				seq++
			}
			m := &tentaclev1.StreamTailRequest{Data: b.Bytes()}
			if first {
				m.TailId, m.ContainerName, first = st.GetTailId(), "web", false
			}
			if err := stream.Send(m); err != nil {
				agentDone <- err
				return
			}
			produced.Add(int64(b.Len()))
		}
	}()

	const bound = 32 << 20
	var consumed, maxSlack int64
	next := 0
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		m, err := admin.Recv()
		if err != nil {
			t.Fatal(err)
		}
		data := m.GetData()
		for len(data) > 0 {
			var seq int
			if _, err := fmt.Sscanf(string(data[:10]), "%010d", &seq); err != nil || seq != next || len(data) < lineLen || data[lineLen-1] != '\n' {
				t.Fatalf("line %d missing or broken: %q", next, data[:min(len(data), 40)])
			}
			data, next = data[lineLen:], next+1
		}
		consumed += int64(len(m.GetData()))
		maxSlack = max(maxSlack, produced.Load()-consumed)
		time.Sleep(5 * time.Millisecond) // the slow reader
	}
	t.Logf("read %d lines (%d MiB) in 5 s; most sent but not yet read: %.1f MiB; bound %d MiB",
		next, consumed>>20, float64(maxSlack)/(1<<20), bound>>20)
	if maxSlack > bound {
		t.Errorf("%d bytes sent by the agent and not read by the admin, over the bound of %d", maxSlack, bound)
	}
	if next == 0 {
		t.Fatal("the admin read nothing")
	}

	leave()
	select {
	case err := <-agentDone:
		if status.Code(err) == codes.OK && !errors.Is(err, io.EOF) {
			t.Errorf("agent's stream ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the agent's stream still open 10 s after the admin left")
	}
	until(t, "no tail registered", func() bool { return s.tails.pending() == 0 })
}

// A stopping server ends live tails at once: the admin's call and the
// agent's stream both end with "server shutting down", and the shutdown is
// not held up by them.
func TestShutdownEndsLiveTails(t *testing.T) {
	t.Parallel()
	s, stop, served := startServerWith(t, Config{}, zaptest.NewLogger(t))
	c := adminClient(t, s, s.BootstrapToken)
	ctx := ctxT(t)
	_, cert, key := enrollRaw(t, s, c, "prod")
	c.CreateApplication(ctx, &tentaclev1.CreateApplicationRequest{Name: "web", ImageRepository: "r.example.com/web"})
	ac, _ := agentConn(t, s, cert, key)
	sess, err := connect(t, ac, "i1")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := c.TailLogs(ctx, &tentaclev1.TailLogsRequest{Application: "web", Environment: "prod", Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	st := nextStartTail(t, sess)
	agent, err := openTail(t, ac, &tentaclev1.StreamTailRequest{TailId: st.GetTailId(), Data: []byte("hello\n")})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := admin.Recv(); err != nil || string(m.GetData()) != "hello\n" {
		t.Fatalf("admin got %v, %v; want the agent's line", m, err)
	}
	stop()
	for {
		m, err := admin.Recv()
		if err != nil {
			wantStatus(t, err, codes.Unavailable, "server shutting down")
			break
		}
		if m.GetError() != "server shutting down" {
			t.Errorf("admin got %v while the server stopped", m)
		}
	}
	select {
	case err := <-agent.ended:
		if status.Code(err) != codes.Unavailable {
			t.Errorf("agent's tail ended with %v, want Unavailable", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("agent's tail still open 20 s after shutdown began")
	}
	select {
	case <-served:
	case <-time.After(20 * time.Second):
		t.Fatal("server still serving 20 s after shutdown began")
	}
}
