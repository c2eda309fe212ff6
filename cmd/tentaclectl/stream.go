package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// reconnector decides whether a broken stream (logs -f, deploy --wait) is
// opened again. A server restart or a cut link shows up as Unavailable once
// the server had been reached; then the stream resumes where it broke, with
// backoff, until it works again or --timeout passes without progress. A
// server that was never reached fails at once, as for any other call.
type reconnector struct {
	conn   *connection
	stderr io.Writer
	lostAt time.Time
	delay  time.Duration
}

const (
	firstRetryDelay = 250 * time.Millisecond
	maxRetryDelay   = 5 * time.Second
)

// progressed records that the stream delivered something.
func (r *reconnector) progressed() { r.lostAt = time.Time{} }

// retry reports whether to open the stream again after err, having waited.
func (r *reconnector) retry(ctx context.Context, err error) bool {
	if ctx.Err() != nil || status.Code(err) != codes.Unavailable {
		return false
	}
	if connected, _ := r.conn.link.state(); !connected {
		return false
	}
	if r.lostAt.IsZero() {
		r.lostAt, r.delay = time.Now(), firstRetryDelay
		fmt.Fprintf(r.stderr, "tentaclectl: lost the stream from %s (%s); reconnecting\n", r.conn.settings.server, status.Convert(err).Message())
	}
	if time.Since(r.lostAt) > r.conn.timeout {
		return false
	}
	// Full jitter, so that many CLIs do not return to a restarted server at once.
	wait := time.Duration(rand.Int64N(int64(r.delay)) + 1)
	r.delay = min(2*r.delay, maxRetryDelay)
	select {
	case <-ctx.Done():
		return false
	case <-time.After(wait):
		return true
	}
}
