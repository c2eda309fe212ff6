package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/agent/docker"
	"github.com/tentacle-deploy/tentacle/agent/journal"
	"github.com/tentacle-deploy/tentacle/internal/mask"
	"github.com/tentacle-deploy/tentacle/internal/spec"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

func TestTailLinesSendsCompleteLinesWithinBounds(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", tailLineMax+10)
	for _, tc := range []struct {
		name   string
		writes []string
		want   string // everything sent, in order
	}{
		{"lines split across writes", []string{"one\ntw", "o\nthr", "ee\n"}, "one\ntwo\nthree\n"},
		{"a last line without newline", []string{"one\nend"}, "one\nend\n"},
		{"an overlong line is broken", []string{long[:100], long[100:] + "\n"},
			long[:tailLineMax-1] + "\n" + long[tailLineMax-1:] + "\n"},
		{"many lines in one write", []string{strings.Repeat(strings.Repeat("b", 999)+"\n", 200)}, strings.Repeat(strings.Repeat("b", 999)+"\n", 200)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sent []string
			l := &tailLines{send: func(b []byte) error { sent = append(sent, string(b)); return nil }}
			for _, w := range tc.writes {
				if n, err := l.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if err := l.flush(); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(sent, ""); got != tc.want {
				t.Errorf("sent %q…, want %q…", got[:min(len(got), 60)], tc.want[:min(len(tc.want), 60)])
			}
			for _, m := range sent {
				if len(m) > tailChunkMax || !strings.HasSuffix(m, "\n") {
					t.Errorf("message of %d bytes ending %q: want complete lines, at most %d bytes", len(m), m[max(0, len(m)-5):], tailChunkMax)
				}
				for _, line := range strings.SplitAfter(m, "\n") {
					if len(line) > tailLineMax {
						t.Errorf("line of %d bytes, the most is %d", len(line), tailLineMax)
					}
				}
			}
		})
	}
}

// followRunner is a Runner whose containers print script, then end with
// reason; with hold they keep the log open until the tail is stopped.
type followRunner struct {
	leakyRunner
	script  []string
	reason  string
	hold    bool
	missing bool
	stopped atomic.Int32 // follows that ended because the server ended the tail
}

func (r *followRunner) FindContainer(_ context.Context, app string) (docker.Container, error) {
	if r.missing {
		return docker.Container{Name: "x-" + app}, docker.ErrNoContainer
	}
	return docker.Container{ID: "c1", Name: "x-" + app, TaskID: "t1"}, nil
}

func (r *followRunner) FollowLogs(ctx context.Context, _ docker.Container, _ docker.LogOptions, w io.Writer) (string, error) {
	for _, s := range r.script {
		if _, err := w.Write([]byte(s)); err != nil {
			return "", err
		}
	}
	if r.hold {
		<-ctx.Done()
		r.stopped.Add(1)
		return "", ctx.Err()
	}
	return r.reason, nil
}

// tailServer records the StreamTail calls the agent makes; with hold it
// keeps each open until release is closed.
type tailServer struct {
	tentaclev1.UnimplementedAgentServiceServer
	tails   chan []*tentaclev1.StreamTailRequest
	opened  chan struct{}
	release chan struct{}
}

func newTailServer() *tailServer {
	return &tailServer{tails: make(chan []*tentaclev1.StreamTailRequest, 32), opened: make(chan struct{}, 32), release: make(chan struct{})}
}

func (s *tailServer) StreamTail(stream tentaclev1.AgentService_StreamTailServer) error {
	var got []*tentaclev1.StreamTailRequest
	for {
		m, err := stream.Recv()
		if err != nil {
			s.tails <- got
			return nil
		}
		got = append(got, m)
		if len(got) == 1 {
			s.opened <- struct{}{}
		}
		if m.GetEnded() != "" {
			s.tails <- got
			return nil
		}
		if m.GetTailId() == "hold" {
			<-s.release
			s.tails <- got
			return nil
		}
	}
}

func (s *tailServer) next(t *testing.T) []*tentaclev1.StreamTailRequest {
	t.Helper()
	select {
	case got := <-s.tails:
		return got
	case <-time.After(20 * time.Second):
		t.Fatal("no tail ended within 20 s")
		return nil
	}
}

func tailAgent(t *testing.T, r Runner) (*testAgentT, *tailServer) {
	t.Helper()
	a, _ := testAgent(t, r)
	srv := newTailServer()
	connectAgent(t, a, serve(t, srv))
	return a, srv
}

// The agent streams the container's log in complete lines with the task's
// secrets masked, even when a secret and the lines are split across the
// engine's writes, then says why the log ended.
func TestTailStreamsMaskedLinesThenTheEnd(t *testing.T) {
	t.Parallel()
	r := &followRunner{script: []string{"pass=" + secret[:3], secret[3:] + "\nsecond li", "ne\n"}, reason: docker.EndContainerStopped}
	a, srv := tailAgent(t, r)
	if _, err := a.journal.Accept(journal.Assignment{TaskID: "t1", Application: "web", ImageRepository: "registry.example.com/team/web", ImageDigest: testDigest,
		RunSpec: spec.RunSpec{Env: []spec.EnvVar{{Name: "DB_PASSWORD", Value: secret}}}, SensitiveEnv: []string{"DB_PASSWORD"}}); err != nil {
		t.Fatal(err)
	}
	a.startTail(context.Background(), &tentaclev1.StartTail{TailId: "tail-1", Application: "web", Follow: true})
	got := srv.next(t)
	first, last := got[0], got[len(got)-1]
	if first.GetTailId() != "tail-1" || first.GetContainerName() != "x-web" || first.GetTaskId() != "t1" {
		t.Errorf("first message %v, want tail-1 of container x-web made by task t1", first)
	}
	var data bytes.Buffer
	for _, m := range got {
		if len(m.GetData()) > 0 && !bytes.HasSuffix(m.GetData(), []byte("\n")) {
			t.Errorf("message %q is not complete lines", m.GetData())
		}
		data.Write(m.GetData())
	}
	if want := "pass=" + mask.Replacement + "\nsecond line\n"; data.String() != want {
		t.Errorf("streamed %q, want %q", data.String(), want)
	}
	if last.GetEnded() != "container stopped" {
		t.Errorf("last message %v, want ended: container stopped", last)
	}
}

func TestTailEndsAtOnceWhenThereIsNothingToStream(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		runner Runner
		ended  string
	}{
		{"no container", &followRunner{missing: true}, "no container named x-web on this host"},
		{"engine without logs", leakyRunner{}, "this agent's engine cannot stream logs"},
		{"not following", &followRunner{reason: docker.EndOfLog}, "end of log"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, srv := tailAgent(t, tc.runner)
			a.startTail(context.Background(), &tentaclev1.StartTail{TailId: "tail-1", Application: "web"})
			got := srv.next(t)
			if last := got[len(got)-1]; got[0].GetTailId() != "tail-1" || last.GetEnded() != tc.ended {
				t.Errorf("messages %v, want tail-1 ended with %q", got, tc.ended)
			}
		})
	}
}

// An agent streams at most maxTails tails at once, beside its session;
// the next one is ended at once. When the server ends a tail, the agent
// stops reading the log.
func TestTailsAreBoundedAndStopWithTheServer(t *testing.T) {
	t.Parallel()
	r := &followRunner{script: []string{"hello\n"}, hold: true}
	a, srv := tailAgent(t, r)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Through the session's handler, which must return while the tails
	// stream: it is the session's receive loop.
	start := func(id string) {
		a.handle(ctx, a.taskCtx, &tentaclev1.ConnectResponse{Msg: &tentaclev1.ConnectResponse_StartTail{StartTail: &tentaclev1.StartTail{
			TailId: id, Application: "web", Follow: true}}}, nil)
	}
	for range maxTails {
		start("hold")
		<-srv.opened
	}
	start("one-too-many")
	got := srv.next(t)
	if want := fmt.Sprintf("too many tails: this agent streams at most %d at once", maxTails); len(got) != 1 || got[0].GetTailId() != "one-too-many" || got[0].GetEnded() != want {
		t.Errorf("tail past the bound: %v, want ended with %q", got, want)
	}
	close(srv.release)
	deadline := time.Now().Add(20 * time.Second)
	for r.stopped.Load() < maxTails || a.tails.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d log reads stopped, %d tails still counted, 20 s after the server ended them", r.stopped.Load(), maxTails, a.tails.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
