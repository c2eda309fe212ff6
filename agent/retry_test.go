package agent

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	revoked := fmt.Errorf("receive welcome: %w", status.Error(codes.PermissionDenied, "target x was revoked"))
	unknown := fmt.Errorf("connect: %w", status.Error(codes.Unauthenticated, "unknown target"))
	down := fmt.Errorf("connect: %w", status.Error(codes.Unavailable, "connection refused"))
	for attempt := range 20 {
		if d := retryDelay(revoked, attempt); d < refusedRetry {
			t.Fatalf("after a refusal (attempt %d) the agent retries in %s, want at least %s", attempt, d, refusedRetry)
		}
		if d := retryDelay(unknown, attempt); d < refusedRetry {
			t.Fatalf("after Unauthenticated (attempt %d) the agent retries in %s", attempt, d)
		}
		if d := retryDelay(down, attempt); d > 30*time.Second+100*time.Millisecond {
			t.Fatalf("an unreachable server waits %s at attempt %d, more than the 30 s cap", d, attempt)
		}
	}
	if d := retryDelay(down, 0); d > time.Second {
		t.Fatalf("first retry after a broken link waits %s, want under a second", d)
	}
}
