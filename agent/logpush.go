package agent

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// logChunk is the most one PushLogs message carries. The bytes sent but
// not yet acknowledged per task are bounded by the journal
// (LogState.Limit, journal.LogInFlight ahead of the acknowledged offset).
const logChunk = 64 << 10

// pushLogsLoop keeps a PushLogs stream open and sends every spooled log
// byte the server has not acknowledged; after any break it resumes from the
// last acknowledged offset.
func (a *Agent) pushLogsLoop(ctx context.Context) {
	for attempt := 0; ; attempt++ {
		acked, err := a.pushLogs(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil || acked {
			// The server stored logs on this stream: its end is a new
			// outage, not one more failure of the last one.
			attempt = 0
		}
		wait := retryDelay(err, attempt) // honours the server's retry hint
		a.log.Debug("log stream ended, reconnecting", zap.Error(err), zap.Duration("in", wait))
		if !sleep(ctx, wait) {
			return
		}
	}
}

// pushLogs runs one stream; acked says whether the server acknowledged
// anything on it.
func (a *Agent) pushLogs(ctx context.Context) (acked bool, err error) {
	// Open the stream only when there is something to send.
	for {
		wake := a.journal.Wait() // before the check, so no write is missed
		if len(a.journal.LogsToPush()) > 0 {
			break
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-wake:
		}
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := a.client.PushLogs(sctx)
	if err != nil {
		return false, wrap("open log stream", err)
	}
	// sent is where each task's next chunk starts on this stream. Chunks go
	// in order on one stream, so the server never sees a gap; a new stream
	// restarts from what the server acknowledged.
	sent := map[string]uint64{}
	ackc := make(chan struct{}, 1)
	var gotAck atomic.Bool
	errc := make(chan error, 1)
	acks := newAckBatch()
	// What the server acknowledged is saved before the stream is left, so
	// the next stream does not send it again.
	defer a.saveAcks(acks)
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			acks.add(resp.GetTaskId(), resp.GetStoredOffset())
		}
	}()
	// Acknowledgements are saved to the journal (a synced write each) by
	// one goroutine, the latest offset of each task at a time: while one
	// is being saved, those arriving meanwhile are merged into the next,
	// so a fast log does not wait for one sync per chunk.
	go func() {
		for {
			select {
			case <-sctx.Done():
				return
			case <-acks.ready:
			}
			a.saveAcks(acks)
			gotAck.Store(true)
			select {
			case ackc <- struct{}{}:
			default:
			}
		}
	}()
	for {
		wake := a.journal.Wait()
		for _, st := range a.journal.LogsToPush() {
			pos := max(sent[st.TaskID], st.Acked)
			for pos < st.Limit {
				// Past Limit the spool cap may still drop bytes: the
				// server must never see them.
				data, err := a.journal.ReadLog(st.TaskID, pos, int(min(logChunk, st.Limit-pos)))
				if err != nil || len(data) == 0 {
					break
				}
				if err := stream.Send(&tentaclev1.PushLogsRequest{TaskId: st.TaskID, Offset: pos, Data: data}); err != nil {
					return gotAck.Load(), wrap("send log", err)
				}
				pos += uint64(len(data))
			}
			sent[st.TaskID] = pos
		}
		select {
		case <-ctx.Done():
			return gotAck.Load(), ctx.Err()
		case err := <-errc:
			if errors.Is(err, context.Canceled) {
				return gotAck.Load(), nil
			}
			return gotAck.Load(), withRetryHint(stream, wrap("log stream", err))
		case <-wake:
		case <-ackc:
		}
	}
}

// saveAcks saves the pending acknowledgements to the journal.
func (a *Agent) saveAcks(b *ackBatch) {
	b.saving.Lock() // in order: an older offset never overwrites a newer one
	defer b.saving.Unlock()
	for id, off := range b.take() {
		if err := a.journal.AckLog(id, off); err != nil {
			a.log.Error("journal log ack", zap.Error(err))
		}
	}
}

// ackBatch holds the latest acknowledged offset of each task until it is
// saved.
type ackBatch struct {
	saving  sync.Mutex
	mu      sync.Mutex
	pending map[string]uint64
	ready   chan struct{} // has a value while pending is not empty
}

func newAckBatch() *ackBatch {
	return &ackBatch{pending: map[string]uint64{}, ready: make(chan struct{}, 1)}
}

// add records an acknowledgement; a later one of the same task replaces it
// (the server's stored offset only grows on a stream).
func (b *ackBatch) add(taskID string, off uint64) {
	b.mu.Lock()
	b.pending[taskID] = off
	b.mu.Unlock()
	select {
	case b.ready <- struct{}{}:
	default:
	}
}

// take returns the pending acknowledgements and forgets them.
func (b *ackBatch) take() map[string]uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.pending
	b.pending = map[string]uint64{}
	return p
}
