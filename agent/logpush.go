package agent

import (
	"context"
	"errors"

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
		err := a.pushLogs(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			attempt = 0
		}
		wait := retryDelay(err, attempt) // honours the server's retry hint
		a.log.Debug("log stream ended, reconnecting", zap.Error(err), zap.Duration("in", wait))
		if !sleep(ctx, wait) {
			return
		}
	}
}

func (a *Agent) pushLogs(ctx context.Context) error {
	// Open the stream only when there is something to send.
	for {
		wake := a.journal.Wait() // before the check, so no write is missed
		if len(a.journal.LogsToPush()) > 0 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		}
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := a.client.PushLogs(sctx)
	if err != nil {
		return wrap("open log stream", err)
	}
	// sent is where each task's next chunk starts on this stream. Chunks go
	// in order on one stream, so the server never sees a gap; a new stream
	// restarts from what the server acknowledged.
	sent := map[string]uint64{}
	acked := make(chan struct{}, 1)
	errc := make(chan error, 1)
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			if err := a.journal.AckLog(resp.GetTaskId(), resp.GetStoredOffset()); err != nil {
				a.log.Error("journal log ack", zap.Error(err))
			}
			select {
			case acked <- struct{}{}:
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
					return wrap("send log", err)
				}
				pos += uint64(len(data))
			}
			sent[st.TaskID] = pos
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errc:
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return withRetryHint(stream, wrap("log stream", err))
		case <-wake:
		case <-acked:
		}
	}
}
