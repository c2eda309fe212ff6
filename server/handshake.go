package server

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// RetryAfterKey is the trailer of a refused Connect that tells the agent
// how long to wait before it dials again, in milliseconds. Agents honour
// it instead of their own backoff.
const RetryAfterKey = "tentacle-retry-after-ms"

// Bounds of the retry hint: the lowest one given, the highest one given
// whatever the pressure.
const (
	minRetryAfter = time.Second
	maxRetryAfter = 30 * time.Second
)

// handshakes admits at most limit sessions into their handshake (from the
// start of Connect until Welcome is sent) at once. The handshake is where a
// session costs the store (target seen, held tasks); after a server restart
// every agent comes back within seconds, and beyond the limit they are
// asked to come back later rather than queue up on the store.
type handshakes struct {
	slots chan struct{}

	mu sync.Mutex
	// refused counts the refusals in the second starting at window: the
	// pressure the retry hint grows with.
	refused int
	window  time.Time
}

func newHandshakes(limit int) *handshakes {
	return &handshakes{slots: make(chan struct{}, limit)}
}

// enter takes a slot if one is free; the caller calls leave once done.
func (h *handshakes) enter() bool {
	select {
	case h.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (h *handshakes) leave() { <-h.slots }

// retryAfter is a random delay to hand a refused agent: at least a second,
// at most two seconds plus one per limit's worth of agents refused in the
// last second (capped at 30 s), so that a larger crowd spreads out further
// and their returns do not collide again.
func (h *handshakes) retryAfter(now time.Time) time.Duration {
	h.mu.Lock()
	if now.Sub(h.window) >= time.Second {
		h.window, h.refused = now, 0
	}
	h.refused++
	crowd := time.Duration(h.refused) * time.Second / time.Duration(cap(h.slots))
	h.mu.Unlock()
	hi := min(2*time.Second+crowd, maxRetryAfter)
	return minRetryAfter + rand.N(hi-minRetryAfter+1)
}

// refuseSession answers a Connect that is not let in with code, msg and
// the retry hint, which goes in the trailer and, for people reading logs,
// in the message.
func refuseSession(stream grpc.ServerStream, after time.Duration, code codes.Code, msg string) error {
	stream.SetTrailer(metadata.Pairs(RetryAfterKey, strconv.FormatInt(after.Milliseconds(), 10)))
	return status.Errorf(code, "%s: retry in %s", msg, after.Round(time.Millisecond))
}
