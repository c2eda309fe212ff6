package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tentacle-deploy/tentacle/internal/mask"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
	"github.com/tentacle-deploy/tentacle/server/store"
)

// A live tail is one admin's TailLogs call fanned out to the agents: the
// admin handler registers a tail per target and asks the target's agent,
// over its session, to open StreamTail with the tail's id. The agent's
// stream is then forwarded, masked, into the admin call's one bounded
// channel. Nothing in between buffers more than that channel: a slow admin
// blocks the forwarders, which stop reading from the agents, whose sends
// then block on gRPC flow control.

// tailChunkMax is the most data one agent message may carry; the agent
// sends at most this much (complete lines, a longer line cut).
const tailChunkMax = 64 << 10

// tail is one target's share of a TailLogs call, from registration until
// the agent's stream ends.
type tail struct {
	id          string
	targetID    string
	targetName  string
	application string
	// out is the admin call's channel; done is closed when the admin call
	// ends, after which nothing may be sent on out.
	out  chan<- *tentaclev1.TailLogsResponse
	done <-chan struct{}
	// claimed is closed when the agent's stream has taken the tail;
	// finished when that stream's handler has stopped sending on out.
	claimed  chan struct{}
	finished chan struct{}
}

// tails maps registered, not yet claimed tail ids to their tail. The zero
// value is ready for use.
type tails struct {
	mu   sync.Mutex
	byID map[string]*tail
}

func (ts *tails) add(t *tail) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.byID == nil {
		ts.byID = map[string]*tail{}
	}
	ts.byID[t.id] = t
}

// claim takes the tail id for the target's stream; a tail is claimed at
// most once, only by the target it was registered for, and only while its
// admin call lasts.
func (ts *tails) claim(id, targetID string) (*tail, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t, ok := ts.byID[id]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "tail %s: unknown or already ended", id)
	}
	if t.targetID != targetID {
		return nil, status.Errorf(codes.PermissionDenied, "tail %s was not asked of this target", id)
	}
	delete(ts.byID, id)
	close(t.claimed)
	return t, nil
}

// drop removes the tail unless a stream claimed it; it reports whether it
// did.
func (ts *tails) drop(t *tail) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.byID[t.id] != t {
		return false
	}
	delete(ts.byID, t.id)
	return true
}

// pending is how many tails wait for their agent (tests).
func (ts *tails) pending() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.byID)
}

// StreamTail forwards one agent's live tail to the admin who asked for it,
// masking the task's secrets on the way. It returns when the agent ends the
// tail, when the admin call ends (which ends the agent's read of the log),
// or when the server stops.
func (g *gateway) StreamTail(stream tentaclev1.AgentService_StreamTailServer) error {
	ctx := stream.Context()
	target := targetFrom(ctx)
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	tl, err := g.s.tails.claim(first.GetTailId(), target.ID)
	if err != nil {
		g.s.log.Warn("tail refused", zap.String("target", target.Name), zap.String("target_id", target.ID), zap.Error(err))
		return err
	}
	defer close(tl.finished)
	log := g.s.log.With(zap.String("target", target.Name), zap.String("target_id", target.ID), zap.String("app", tl.application))
	m, err := g.s.tailMasker(stream, target, first.GetTaskId())
	if err != nil {
		tl.send(&tentaclev1.TailLogsResponse{Target: tl.targetName, Error: status.Convert(err).Message()})
		return err
	}
	log.Debug("tail opened", zap.String("tail", tl.id), zap.String("container", first.GetContainerName()), zap.String("task", first.GetTaskId()))

	// Recv runs in its own goroutine so that an admin who leaves, or a
	// server stopping, ends the call even while the agent is silent. It
	// takes the next message only once the previous one was forwarded:
	// that is the back-pressure.
	reqs, errc := receive(ctx, stream.Recv)
	var prev []byte // the end of the last chunk, for a secret split across two
	for req := first; ; {
		if len(req.GetData()) > tailChunkMax {
			err := status.Errorf(codes.InvalidArgument, "data: %d bytes in one message, the most is %d", len(req.GetData()), tailChunkMax)
			tl.send(&tentaclev1.TailLogsResponse{Target: tl.targetName, Error: "agent sent an invalid tail: " + status.Convert(err).Message()})
			return err
		}
		if data := req.GetData(); len(data) > 0 {
			data = append([]byte(nil), data...)
			m.InPlace(prev, data)
			prev = keepTail(prev, data, m.MaxLen()-1)
			if !tl.send(&tentaclev1.TailLogsResponse{Target: tl.targetName, Data: data}) {
				return status.Error(codes.Canceled, "the admin stopped the tail")
			}
		}
		if ended := req.GetEnded(); ended != "" {
			tl.send(&tentaclev1.TailLogsResponse{Target: tl.targetName, Ended: m.String(ended)})
			log.Debug("tail ended", zap.String("tail", tl.id), zap.String("reason", ended))
			return nil
		}
		select {
		case req = <-reqs:
		case err := <-errc:
			msg := "the agent's stream broke: " + status.Convert(err).Message()
			if errors.Is(err, io.EOF) {
				msg = "the agent ended the tail without saying why"
			}
			tl.send(&tentaclev1.TailLogsResponse{Target: tl.targetName, Error: msg})
			return nil
		case <-tl.done:
			return status.Error(codes.Canceled, "the admin stopped the tail")
		case <-g.s.stopping:
			tl.send(&tentaclev1.TailLogsResponse{Target: tl.targetName, Error: "server shutting down"})
			return errShuttingDown
		}
	}
}

// send passes m to the admin call; false when the admin call has ended.
func (t *tail) send(m *tentaclev1.TailLogsResponse) bool {
	select {
	case t.out <- m:
		return true
	case <-t.done:
		return false
	}
}

// keepTail returns the last n bytes of prev followed by data.
func keepTail(prev, data []byte, n int) []byte {
	if n <= 0 {
		return nil
	}
	if len(data) >= n {
		return append(prev[:0], data[len(data)-n:]...)
	}
	joined := append(prev, data...)
	return append([]byte(nil), joined[max(0, len(joined)-n):]...)
}

// tailMasker returns the masker of the task that created the tailed
// container, once it is sure the task is this target's. A container made
// by hand (no task) has no secrets of ours to mask.
func (s *Server) tailMasker(stream tentaclev1.AgentService_StreamTailServer, target store.Target, taskID string) (*mask.Masker, error) {
	if taskID == "" {
		return mask.New(nil), nil
	}
	ctx := stream.Context()
	task, err := s.store.GetTask(ctx, taskID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && task.TargetID != target.ID) {
		return nil, status.Errorf(codes.PermissionDenied, "task %s is not assigned to target %s", taskID, target.Name)
	}
	if err != nil {
		return nil, storeErr("get task", err)
	}
	m, err := s.taskMasker(ctx, task)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "tail not forwarded: %v", fmt.Errorf("secrets unknown: %w", err))
	}
	return m, nil
}

// receive calls recv in a goroutine until it fails, handing each message
// over only when the previous one was taken, and the error last; it stops
// when ctx ends.
func receive[T any](ctx context.Context, recv func() (T, error)) (<-chan T, <-chan error) {
	msgs, errc := make(chan T), make(chan error, 1)
	go func() {
		for {
			m, err := recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	return msgs, errc
}
