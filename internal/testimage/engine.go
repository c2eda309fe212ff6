package testimage

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// RequireEngine returns a client for the local Docker engine (DOCKER_HOST or
// the default socket, API version negotiated). Without a reachable linux
// engine the test is skipped, unless TENTACLE_REQUIRE_DOCKER=1 (as .ci/run
// sets it) makes that a failure: CI never counts a skipped Docker test as
// passing.
func RequireEngine(t testing.TB) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	osType := ""
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ping, perr := cli.Ping(ctx)
		cancel()
		err, osType = perr, ping.OSType
	}
	required := os.Getenv("TENTACLE_REQUIRE_DOCKER") == "1"
	if err != nil {
		if required {
			t.Fatalf("no Docker engine reachable and TENTACLE_REQUIRE_DOCKER=1: %v", err)
		}
		t.Skipf("no Docker engine reachable (set DOCKER_HOST, or TENTACLE_REQUIRE_DOCKER=1 to fail instead): %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	if osType != "" && osType != "linux" {
		// The test images hold a linux binary.
		if required {
			t.Fatalf("the Docker engine runs %s containers; these tests need a linux engine", osType)
		}
		t.Skipf("the Docker engine runs %s containers; these tests need a linux engine", osType)
	}
	return cli
}

// SyncBuffer collects output written by one goroutine while a test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
