package agent

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// These tests run the agent's session against a scripted AgentService on
// loopback gRPC: the agent package may not import the server, and the
// server's side of Reconnect and of the handshake limiter is its own
// tests' business. The enforcement policy is the server's
// (server/server.go), so the agent's keepalive is checked against it.

type connectStream = grpc.BidiStreamingServer[tentaclev1.ConnectRequest, tentaclev1.ConnectResponse]

// scriptedServer runs script for the n-th Connect (from 1).
type scriptedServer struct {
	tentaclev1.UnimplementedAgentServiceServer
	sessions atomic.Int32
	script   func(n int, stream connectStream) error
}

func (s *scriptedServer) Connect(stream connectStream) error {
	return s.script(int(s.sessions.Add(1)), stream)
}

// serve starts srv on a loopback port with the server's keepalive
// enforcement and returns its address.
func serve(t *testing.T, srv tentaclev1.AgentServiceServer) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}))
	tentaclev1.RegisterAgentServiceServer(g, srv)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return lis.Addr().String()
}

// connectAgent points a test agent at addr with the agent's keepalive.
func connectAgent(t *testing.T, a *testAgentT, addr string) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithKeepaliveParams(clientKeepalive))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	a.conn, a.client = conn, tentaclev1.NewAgentServiceClient(conn)
	a.instance = "test-instance"
}

// welcome reads the Hello and answers with a Welcome whose heartbeat is
// too rare to keep a link busy.
func welcome(stream connectStream) (*tentaclev1.Hello, error) {
	m, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	return m.GetHello(), stream.Send(&tentaclev1.ConnectResponse{Msg: &tentaclev1.ConnectResponse_Welcome{Welcome: &tentaclev1.Welcome{
		SessionId: "s", HeartbeatInterval: durationpb.New(time.Hour)}}})
}

// On Reconnect the agent closes the session and dials again; the task it
// was running goes on and its outcome arrives on the new session.
func TestReconnectKeepsTasksRunning(t *testing.T) {
	t.Parallel()
	r := newHoldingRunner()
	a, _ := testAgent(t, r)
	hellos := make(chan *tentaclev1.Hello, 4)
	final := make(chan *tentaclev1.TaskEvent, 1)
	srv := &scriptedServer{script: func(n int, stream connectStream) error {
		hello, err := welcome(stream)
		if err != nil {
			return err
		}
		hellos <- hello
		if n == 1 {
			if err := stream.Send(&tentaclev1.ConnectResponse{Msg: &tentaclev1.ConnectResponse_Assign{Assign: &tentaclev1.Assign{Task: &tentaclev1.TaskAssignment{
				TaskId: "t1", Application: "web", ImageRepository: "registry.example.com/team/web", ImageDigest: testDigest}}}}); err != nil {
				return err
			}
			<-r.started // running
			if err := stream.Send(&tentaclev1.ConnectResponse{Msg: &tentaclev1.ConnectResponse_Reconnect{Reconnect: &tentaclev1.Reconnect{
				After: durationpb.New(50 * time.Millisecond), Reason: "server shutting down"}}}); err != nil {
				return err
			}
		}
		for {
			m, err := stream.Recv()
			if err != nil {
				return err
			}
			if e := m.GetTaskEvent(); e != nil && n > 1 {
				stream.Send(&tentaclev1.ConnectResponse{Msg: &tentaclev1.ConnectResponse_EventAck{EventAck: &tentaclev1.EventAck{TaskId: e.GetTaskId(), Sequence: e.GetSequence()}}})
				if e.GetState() == tentaclev1.TaskState_TASK_STATE_SUCCEEDED {
					final <- e
				}
			}
		}
	}}
	connectAgent(t, a, serve(t, srv))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.sessionLoop(ctx, a.taskCtx); close(done) }()
	defer func() { cancel(); <-done }()

	<-hellos
	second := <-hellos
	if h := second.GetHeldTasks(); len(h) != 1 || h[0].GetTaskId() != "t1" || h[0].GetFinished() {
		t.Fatalf("Hello after Reconnect holds %v, want t1 unfinished (still running)", h)
	}
	close(r.gate("t1"))
	if e := <-final; e.GetImageDigest() != testDigest {
		t.Errorf("final event on the new session = %v", e)
	}
	select {
	case id := <-r.started:
		t.Fatalf("task %s started a second time", id)
	default:
	}
	// The server acknowledges the final event; the agent saves that ack in
	// the task's directory, which must happen before the test removes it.
	deadline := time.Now().Add(10 * time.Second)
	for len(a.journal.Unacked()) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// A handshake the server refuses with a retry hint is retried after the
// hint (plus up to a quarter of jitter), not after the short backoff.
func TestHandshakeRefusedWithRetryHint(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		trailer  metadata.MD
		min, max time.Duration
	}{
		{"hint", metadata.Pairs(retryAfterKey, "3000"), 3 * time.Second, 3750 * time.Millisecond},
		{"no hint", nil, 0, 1100 * time.Millisecond},
		{"bad hint", metadata.Pairs(retryAfterKey, "soon"), 0, 1100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, _ := testAgent(t, newHoldingRunner())
			connectAgent(t, a, serve(t, &scriptedServer{script: func(_ int, stream connectStream) error {
				stream.SetTrailer(tc.trailer)
				return status.Error(codes.ResourceExhausted, "too many agents connecting")
			}}))
			err := a.session(context.Background(), a.taskCtx)
			if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "too many agents connecting") {
				t.Fatalf("session error = %v, want the server's ResourceExhausted", err)
			}
			for range 50 {
				if d := retryDelay(err, 0); d < tc.min || d > tc.max {
					t.Fatalf("retry in %s, want between %s and %s (error %v)", d, tc.min, tc.max, err)
				}
			}
		})
	}
}

// Reconnect's delay is spread over [0, after].
func TestReconnectDelayIsWithinTheServersWindow(t *testing.T) {
	t.Parallel()
	err := &reconnectRequest{after: 2 * time.Second, reason: "shedding load"}
	var below, above bool
	for range 200 {
		d := retryDelay(err, 7)
		if d < 0 || d > 2*time.Second {
			t.Fatalf("delay %s outside [0, 2s]", d)
		}
		below, above = below || d < time.Second, above || d >= time.Second
	}
	if !below || !above {
		t.Errorf("200 delays all in one half of the window: no jitter")
	}
}

// A link that goes silent (no FIN, no RST) ends the session through the
// keepalive; a healthy idle link is not ended by the server's enforcement
// of its keepalive policy.
func TestKeepaliveEndsSessionOnSilentLink(t *testing.T) {
	t.Parallel()
	a, _ := testAgent(t, newHoldingRunner())
	up := make(chan struct{}, 1)
	addr := serve(t, &scriptedServer{script: func(_ int, stream connectStream) error {
		if _, err := welcome(stream); err != nil {
			return err
		}
		up <- struct{}{}
		<-stream.Context().Done()
		return nil
	}})
	p := startSilencer(t, addr)
	connectAgent(t, a, p.addr)
	ended := make(chan error, 1)
	go func() { ended <- a.session(context.Background(), a.taskCtx) }()
	<-up
	// Longer than a keepalive period: at least one ping went through, and
	// the server's policy let it.
	select {
	case err := <-ended:
		t.Fatalf("an idle, healthy session ended: %v", err)
	case <-time.After(clientKeepalive.Time + 2*time.Second):
	}
	p.silence()
	select {
	case err := <-ended:
		if status.Code(err) != codes.Unavailable {
			t.Errorf("session over a silent link ended with %v, want Unavailable", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("a session over a silent link was still up after a minute")
	}
}

// silencer is a TCP proxy that can go silent: it then drops every byte
// both ways without closing anything, as a dead NAT entry does.
type silencer struct {
	addr   string
	silent atomic.Bool
}

func startSilencer(t *testing.T, upstream string) *silencer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &silencer{addr: lis.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { lis.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			t.Cleanup(func() { c.Close(); u.Close() })
			wg.Add(2)
			go func() { defer wg.Done(); p.pipe(u, c) }()
			go func() { defer wg.Done(); p.pipe(c, u) }()
		}
	}()
	return p
}

func (p *silencer) silence() { p.silent.Store(true) }

func (p *silencer) pipe(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.silent.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
