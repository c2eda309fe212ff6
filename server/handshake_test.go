package server

import (
	"testing"
	"time"
)

// TestRetryHintSpreadsWithTheCrowdAndThePace: the first agents refused are
// asked back within 1-2 s; the more are refused within a second, and the
// longer a handshake takes, the wider the hints spread, never past 30 s; a
// quiet second later they are short again.
func TestRetryHintSpreadsWithTheCrowdAndThePace(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 21, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		took    time.Duration // each handshake's time
		perStep time.Duration // how much the highest hint grows per refusal
		longest time.Duration // the longest of 200 hints must pass this
	}{
		// 2 slots: each refusal adds 2 × took / 2 to the spread.
		{"slow store", time.Second, time.Second, 5 * time.Second},
		{"fast store", time.Millisecond, 10 * time.Millisecond, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHandshakes(2)
			h.enter()
			h.leave(tc.took)
			longest := time.Duration(0)
			for i := 1; i <= 200; i++ {
				after := h.retryAfter(now)
				hi := min(2*time.Second+time.Duration(i)*tc.perStep, 30*time.Second)
				if after < time.Second || after > hi {
					t.Fatalf("refusal %d: hint %s, want 1s to %s", i, after, hi)
				}
				longest = max(longest, after)
			}
			if longest <= tc.longest {
				t.Errorf("longest of 200 hints in one second %s, want over %s: the crowd does not spread", longest, tc.longest)
			}
			if after := h.retryAfter(now.Add(time.Second)); after > 2*time.Second+tc.perStep {
				t.Errorf("first hint of a new second %s, want at most %s", after, 2*time.Second+tc.perStep)
			}
		})
	}
}
