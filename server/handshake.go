package server

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
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
	// crowd the retry hint spreads.
	refused int
	window  time.Time
	// took is a moving average of how long a handshake holds its slot.
	took time.Duration
	// refusedTotal counts every refusal, for the metrics.
	refusedTotal atomic.Uint64
}

// Bounds of one handshake's time in the average: a store too fast to
// measure still costs something, and an agent slow to say Hello should not
// make every hint long.
const (
	minHandshakeTime = 10 * time.Millisecond
	maxHandshakeTime = time.Second
)

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

// leave frees the slot of a handshake that held it for took.
func (h *handshakes) leave(took time.Duration) {
	took = min(max(took, minHandshakeTime), maxHandshakeTime)
	h.mu.Lock()
	if h.took == 0 {
		h.took = took
	} else {
		h.took += (took - h.took) / 8
	}
	h.mu.Unlock()
	<-h.slots
}

// retryAfter is a random delay to hand a refused agent: at least a second,
// at most two seconds plus twice the time the agents refused in the last
// second would take to get through the slots at the current pace (at most
// 30 s). A larger crowd, or a slower store, spreads the returns further, so
// that they do not collide again; a fast server brings them back soon.
func (h *handshakes) retryAfter(now time.Time) time.Duration {
	h.mu.Lock()
	if now.Sub(h.window) >= time.Second {
		h.window, h.refused = now, 0
	}
	h.refused++
	h.refusedTotal.Add(1)
	took := max(h.took, minHandshakeTime)
	crowd := 2 * time.Duration(h.refused) * took / time.Duration(cap(h.slots))
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
