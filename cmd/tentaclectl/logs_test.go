package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/agent/docker"
)

// The live tail runs through a real server and real agents; only the
// container engine is fake. These methods make fakeEngine a log follower
// whose containers, by application, are:
//
//	web      prints "line 1" to "line 3" and its log ends (or it stops)
//	forever  prints "line 1", then nothing until the tail ends
//	anything else: no container
func (e *fakeEngine) FindContainer(_ context.Context, app string) (docker.Container, error) {
	if app != "web" && app != "forever" {
		return docker.Container{Name: app}, docker.ErrNoContainer
	}
	return docker.Container{ID: "c-" + app, Name: app}, nil
}

func (e *fakeEngine) FollowLogs(ctx context.Context, c docker.Container, opts docker.LogOptions, w io.Writer) (string, error) {
	n := 3
	if c.Name == "forever" {
		n = 1
	}
	for i := 1; i <= n; i++ {
		if _, err := fmt.Fprintf(w, "line %d\n", i); err != nil {
			return "", err
		}
	}
	switch {
	case c.Name == "forever":
		<-ctx.Done()
		return "", ctx.Err()
	case opts.Follow:
		return docker.EndContainerStopped, nil
	}
	return docker.EndOfLog, nil
}

// tailFleet is a real server with two connected agents in prod and the
// applications web and forever.
func tailFleet(t *testing.T) (*realServer, []*runningAgent) {
	t.Helper()
	r := startRealServer(t)
	r.must(t, "env", "create", "prod")
	for _, app := range []string{"web", "forever"} {
		r.must(t, "app", "create", app, "--image", "r.example.com/"+app)
	}
	agents := []*runningAgent{r.startAgent(t, "prod", "", &fakeEngine{}), r.startAgent(t, "prod", "", &fakeEngine{})}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var ts struct{ Targets []struct{ Connected bool } }
		if err := json.Unmarshal([]byte(r.must(t, "targets", "-o", "json").stdout), &ts); err != nil {
			t.Fatal(err)
		}
		if len(ts.Targets) == 2 && ts.Targets[0].Connected && ts.Targets[1].Connected {
			return r, agents
		}
		if time.Now().After(deadline) {
			t.Fatal("agents not connected within 20 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLogsLiveTail(t *testing.T) {
	t.Parallel()
	r, agents := tailFleet(t)
	a, b := agents[0].name, agents[1].name
	width := max(len(a), len(b))

	t.Run("each line prefixed with its padded target, the ends on stderr", func(t *testing.T) {
		res := r.must(t, "logs", "web", "--env", "prod")
		var want []string
		for _, n := range []string{a, b} {
			for i := 1; i <= 3; i++ {
				want = append(want, fmt.Sprintf("%-*s | line %d", width, n, i))
			}
		}
		got := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n")
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("stdout:\n%s\nwant, in any order between targets:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		ends := strings.Split(strings.TrimSuffix(res.stderr, "\n"), "\n")
		slices.Sort(ends)
		wantEnds := []string{a + ": end of log", b + ": end of log"}
		slices.Sort(wantEnds)
		if !slices.Equal(ends, wantEnds) {
			t.Errorf("stderr %q, want %q", ends, wantEnds)
		}
	})
	t.Run("-o json: one object per line", func(t *testing.T) {
		res := r.must(t, "logs", "web", "--env", "prod", "--target", b, "-f", "-o", "json")
		if want := fmt.Sprintf("{\"target\":%q,\"line\":\"line 1\"}\n{\"target\":%q,\"line\":\"line 2\"}\n{\"target\":%q,\"line\":\"line 3\"}\n", b, b, b); res.stdout != want {
			t.Errorf("stdout %q, want %q", res.stdout, want)
		}
		if res.stderr != b+": container stopped\n" {
			t.Errorf("stderr %q", res.stderr)
		}
	})
	t.Run("no container anywhere", func(t *testing.T) {
		r.must(t, "app", "create", "api", "--image", "r.example.com/api")
		res := r.must(t, "logs", "api", "--env", "prod", "--target", a)
		if res.stdout != "" || res.stderr != a+": no container named api on this host\n" {
			t.Errorf("stdout %q, stderr %q", res.stdout, res.stderr)
		}
	})
	t.Run("Ctrl-C ends a followed tail with exit 0", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan result, 1)
		go func() { done <- r.h.runEnv(t, ctx, r.env, "logs", "forever", "--env", "prod", "-f") }()
		time.Sleep(time.Second) // both targets streaming, then idle
		cancel()
		res := <-done
		wantCode(t, res, 0)
		if res.stderr != "" || !strings.Contains(res.stdout, a) || !strings.Contains(res.stdout, b) {
			t.Errorf("stdout %q, stderr %q; want both targets' first line and no message", res.stdout, res.stderr)
		}
	})
	t.Run("every target failing exits 1", func(t *testing.T) {
		agents[0].stop()
		deadline := time.Now().Add(20 * time.Second)
		for {
			res := r.run(t, "logs", "web", "--env", "prod", "--target", a)
			if res.code == 1 && res.stderr == a+": no session: the agent is not connected (see `tentaclectl targets`)\n" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no exit 1 with no session within 20 s; last: %d %q", res.code, res.stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func TestLogsRejectsBadFlags(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"logs"}, "tentaclectl: missing TASK (or APP with --env)\n"},
		{[]string{"logs", "web", "--env", "prod", "--since", "10x"}, `tentaclectl: --since "10x": use a positive duration such as 30s, 10m or 2h (that long ago)` + "\n"},
		{[]string{"logs", "web", "--env", "prod", "--since", "-5m"}, `tentaclectl: --since "-5m": use a positive duration such as 30s, 10m or 2h (that long ago)` + "\n"},
		{[]string{"logs", "web", "--env", "prod", "--tail", "-1"}, `tentaclectl: --tail "-1": use a number of lines, 0 or more (0: every line)` + "\n"},
		{[]string{"logs", "task-1", "--tail", "3"}, "tentaclectl: --tail needs --env: it applies to the live log of an application (logs APP --env ENV)\n"},
		{[]string{"logs", "task-1", "--target", "web-1"}, "tentaclectl: --target needs --env: it applies to the live log of an application (logs APP --env ENV)\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			res := h.run(t, tc.args...)
			wantCode(t, res, 2)
			if first, _, _ := strings.Cut(res.stderr, "\n"); first+"\n" != tc.msg {
				t.Errorf("stderr %q, want it to start with %q", res.stderr, tc.msg)
			}
		})
	}
	if n := h.fake.count(); n != 0 {
		t.Errorf("the server got %d requests for bad flags", n)
	}
}

func FuzzParseTailSince(f *testing.F) {
	for _, s := range []string{"10m", "2h", "1h30m", "0", "-5m", "10x", "", "9999999999h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseTailSince(s)
		if err == nil && d <= 0 {
			t.Fatalf("--since %q accepted as %s: want a positive duration", s, d)
		}
		if err != nil && !strings.Contains(err.Error(), "--since") {
			t.Fatalf("error %q does not name --since", err)
		}
	})
}

func FuzzParseTailLines(f *testing.F) {
	for _, s := range []string{"0", "3", "-1", "x", "", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseTailLines(s)
		if err == nil && n < 0 {
			t.Fatalf("--tail %q accepted as %d", s, n)
		}
		if err != nil && !strings.Contains(err.Error(), "--tail") {
			t.Fatalf("error %q does not name --tail", err)
		}
	})
}
