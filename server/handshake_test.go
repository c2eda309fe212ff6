package server

import (
	"testing"
	"time"
)

// TestRetryHintGrowsWithTheCrowd: the first agents refused are asked back
// within 1-2 s; the more are refused within a second, the wider the hints
// spread, never past 30 s; a quiet second later they are short again.
func TestRetryHintGrowsWithTheCrowd(t *testing.T) {
	t.Parallel()
	h := newHandshakes(2)
	now := time.Date(2026, 11, 26, 21, 0, 0, 0, time.UTC)
	longest := time.Duration(0)
	for i := 1; i <= 200; i++ {
		after := h.retryAfter(now)
		hi := min(2*time.Second+time.Duration(i)*time.Second/2, 30*time.Second)
		if after < time.Second || after > hi {
			t.Fatalf("refusal %d: hint %s, want 1s to %s", i, after, hi)
		}
		longest = max(longest, after)
	}
	if longest <= 5*time.Second {
		t.Errorf("longest of 200 hints in one second %s: the crowd does not spread", longest)
	}
	if after := h.retryAfter(now.Add(time.Second)); after > 2500*time.Millisecond {
		t.Errorf("first hint of a new second %s, want at most 2.5s", after)
	}
}
