package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/tentacle-deploy/tentacle/agent/docker"
	"github.com/tentacle-deploy/tentacle/internal/mask"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// logFollower is what a live tail needs from the runner; *docker.Deployer
// has it. A runner without it (a test fake) answers every tail with an
// end message instead.
type logFollower interface {
	FindContainer(ctx context.Context, app string) (docker.Container, error)
	FollowLogs(ctx context.Context, c docker.Container, opts docker.LogOptions, w io.Writer) (string, error)
}

const (
	// maxTails bounds the live tails an agent streams at once: each holds
	// a Docker log connection and a gRPC stream.
	maxTails = 16
	// tailLineMax is the longest line a tail sends as one; a longer one is
	// broken into several. tailChunkMax is the most one message carries,
	// as the server accepts it.
	tailLineMax  = 32 << 10
	tailChunkMax = 64 << 10
	// tailEndWait is how long the agent waits for the server to take a
	// tail's last message before it drops the stream.
	tailEndWait = 30 * time.Second
)

// startTail streams the log the server asked for in the background: a
// tail lasts as long as the admin reads it and must not hold up the
// session. Tails end with the session (ctx).
func (a *Agent) startTail(ctx context.Context, st *tentaclev1.StartTail) {
	log := a.log.With(zap.String("app", st.GetApplication()), zap.String("tail", st.GetTailId()))
	if a.tails.Add(1) > maxTails {
		a.tails.Add(-1)
		log.Warn("live tail refused: too many at once", zap.Int("max", maxTails))
		go a.refuseTail(ctx, st.GetTailId(), fmt.Sprintf("too many tails: this agent streams at most %d at once", maxTails), log)
		return
	}
	go func() {
		defer a.tails.Add(-1)
		a.runTail(ctx, st, log)
	}()
}

// refuseTail opens the tail only to end it at once with reason.
func (a *Agent) refuseTail(ctx context.Context, id, reason string, log *zap.Logger) {
	ctx, cancel := context.WithTimeout(ctx, tailEndWait)
	defer cancel()
	stream, err := a.client.StreamTail(ctx)
	if err != nil {
		log.Warn("live tail", zap.Error(err))
		return
	}
	endTail(stream, &tentaclev1.StreamTailRequest{TailId: id, Ended: reason}, nil)
}

func (a *Agent) runTail(ctx context.Context, st *tentaclev1.StartTail, log *zap.Logger) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := a.client.StreamTail(ctx)
	if err != nil {
		log.Warn("live tail", zap.Error(err))
		return
	}
	first := &tentaclev1.StreamTailRequest{TailId: st.GetTailId()}
	f, ok := a.runner.(logFollower)
	if !ok {
		first.Ended = "this agent's engine cannot stream logs"
		endTail(stream, first, nil)
		return
	}
	c, err := f.FindContainer(ctx, st.GetApplication())
	switch {
	case errors.Is(err, docker.ErrNoContainer):
		first.Ended = fmt.Sprintf("no container named %s on this host", c.Name)
	case err != nil:
		first.Ended = "docker: " + err.Error()
	}
	if first.Ended != "" {
		endTail(stream, first, nil)
		return
	}
	first.ContainerName, first.TaskId = c.Name, c.TaskID
	if err := stream.Send(first); err != nil {
		log.Warn("live tail", zap.Error(err))
		return
	}
	// The server ends the call when the admin stops reading, which stops
	// the Docker read.
	answered := drain(stream, cancel)
	lines := &tailLines{send: func(data []byte) error {
		return stream.Send(&tentaclev1.StreamTailRequest{Data: data})
	}}
	// Masked before anything leaves the host, as in the task log; the
	// server masks again with the release's secrets.
	var secrets []string
	if as, ok := a.journal.Assignment(c.TaskID); ok && c.TaskID != "" {
		secrets = sensitiveValues(as)
	}
	masked := mask.New(secrets).Writer(lines)
	opts := docker.LogOptions{TailLines: st.GetTailLines(), Follow: st.GetFollow()}
	if st.GetSince() != nil {
		opts.Since = st.GetSince().AsTime()
	}
	log.Info("live tail started", zap.String("container", c.Name), zap.Bool("follow", opts.Follow))
	ended, err := f.FollowLogs(ctx, c, opts, masked)
	if ctx.Err() != nil {
		log.Info("live tail stopped by the server")
		return
	}
	if err == nil {
		err = masked.Flush()
	}
	if err == nil {
		err = lines.flush()
	}
	if err != nil {
		ended = "cannot read the log: " + err.Error()
	}
	log.Info("live tail ended", zap.String("reason", ended))
	endTail(stream, &tentaclev1.StreamTailRequest{Ended: ended}, answered)
}

// endTail sends the tail's last message and waits, at most tailEndWait,
// until the server has taken it and ended the call (answered, or a drain
// of its own when nil): cancelling the call before that could lose the
// message.
func endTail(stream tentaclev1.AgentService_StreamTailClient, last *tentaclev1.StreamTailRequest, answered <-chan struct{}) {
	if stream.Send(last) != nil || stream.CloseSend() != nil {
		return
	}
	if answered == nil {
		answered = drain(stream, func() {})
	}
	select {
	case <-answered:
	case <-time.After(tailEndWait):
	}
}

// drain reads the stream until the server ends it, then calls ended and
// closes the returned channel. The server never sends anything on a tail:
// the end of the call is its only message.
func drain(stream tentaclev1.AgentService_StreamTailClient, ended func()) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer ended()
		for {
			if _, err := stream.Recv(); err != nil {
				return
			}
		}
	}()
	return done
}

// tailLines turns a byte stream into messages of complete lines: at most
// tailChunkMax bytes each, a line longer than tailLineMax broken into
// several. It sends as soon as a line is complete, so a live tail shows
// each line when it is printed.
type tailLines struct {
	send    func([]byte) error
	partial []byte
}

func (l *tailLines) Write(p []byte) (int, error) {
	n := len(p)
	var chunk []byte
	for len(p) > 0 {
		room := tailLineMax - 1 - len(l.partial) // line bytes that fit before its newline
		i := bytes.IndexByte(p, '\n')
		var line []byte
		switch {
		case i >= 0 && i <= room:
			line, p = append(l.partial, p[:i+1]...), p[i+1:]
		case i < 0 && len(p) <= room:
			l.partial, p = append(l.partial, p...), nil
			continue
		default:
			// An overlong line: what fits goes out as a line of its own.
			line, p = append(append(l.partial, p[:room]...), '\n'), p[room:]
		}
		l.partial = nil
		if len(chunk)+len(line) > tailChunkMax {
			if err := l.send(chunk); err != nil {
				return 0, err
			}
			chunk = nil
		}
		chunk = append(chunk, line...)
	}
	if len(chunk) > 0 {
		if err := l.send(chunk); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// flush sends a last line the log did not end with a newline.
func (l *tailLines) flush() error {
	if len(l.partial) == 0 {
		return nil
	}
	err := l.send(append(l.partial, '\n'))
	l.partial = nil
	return err
}
