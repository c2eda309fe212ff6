package docker

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
)

func TestFollowLogs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	digest := f.push("1.0")
	if _, err, rec := f.run(context.Background(), f.task("1.0", digest, env("TESTAPP_LINES", "6"), env("TESTAPP_STDERR", "1"))); err != nil {
		t.Fatalf("Deploy: %v\n%s", err, rec.logs.String())
	}
	ctx := context.Background()
	c, err := f.d.FindContainer(ctx, f.app)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != f.app || c.TaskID != "task-1.0" || c.TTY || c.ID == "" {
		t.Errorf("FindContainer = %+v, want %s made by task-1.0, no TTY", c, f.app)
	}
	// The gate passed after 1 s of 20 ms lines: all six are printed. A
	// stdout line and the stderr line printed with it may come in either
	// order (the engine orders by time, to the nanosecond at best).
	want := "line 1 \nstderr 1\nline 2 \nline 3 \nstderr 3\nline 4 \nline 5 \nstderr 5\nline 6 \n"
	sorted := func(s string) string {
		lines := strings.SplitAfter(s, "\n")
		slices.Sort(lines)
		return strings.Join(lines, "")
	}

	t.Run("the whole log, demultiplexed", func(t *testing.T) {
		var out syncBuffer
		ended, err := f.d.FollowLogs(ctx, c, LogOptions{}, &out)
		if err != nil || ended != EndOfLog {
			t.Fatalf("FollowLogs = %q, %v; want %q", ended, err, EndOfLog)
		}
		if sorted(out.String()) != sorted(want) {
			t.Errorf("log %q, want %q", out.String(), want)
		}
	})
	t.Run("the last 2 lines", func(t *testing.T) {
		var out syncBuffer
		if _, err := f.d.FollowLogs(ctx, c, LogOptions{TailLines: 2}, &out); err != nil {
			t.Fatal(err)
		}
		if got := sorted(out.String()); got != "line 6 \nstderr 5\n" && got != "line 5 \nline 6 \n" {
			t.Errorf("log %q, want its last 2 lines", out.String())
		}
	})
	t.Run("since a time after every line", func(t *testing.T) {
		var out syncBuffer
		if _, err := f.d.FollowLogs(ctx, c, LogOptions{Since: time.Now().Add(time.Hour)}, &out); err != nil {
			t.Fatal(err)
		}
		if out.String() != "" {
			t.Errorf("log %q, want nothing", out.String())
		}
	})
	t.Run("following ends when the caller does", func(t *testing.T) {
		fctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			_, err := f.d.FollowLogs(fctx, c, LogOptions{Follow: true}, &syncBuffer{})
			done <- err
		}()
		time.Sleep(200 * time.Millisecond)
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("FollowLogs = %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("FollowLogs still reading 10 s after its ctx ended")
		}
	})
	t.Run("following ends when the container stops", func(t *testing.T) {
		var out syncBuffer
		done := make(chan string, 1)
		go func() {
			ended, err := f.d.FollowLogs(ctx, c, LogOptions{Follow: true, TailLines: 1}, &out)
			if err != nil {
				ended = err.Error()
			}
			done <- ended
		}()
		timeout := 5
		if err := f.api.ContainerStop(ctx, c.ID, container.StopOptions{Timeout: &timeout}); err != nil {
			t.Fatal(err)
		}
		select {
		case ended := <-done:
			if ended != EndContainerStopped {
				t.Errorf("FollowLogs ended with %q, want %q", ended, EndContainerStopped)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("FollowLogs still following 20 s after the container stopped")
		}
		if !strings.HasSuffix(out.String(), "stopping\n") {
			t.Errorf("followed log %q does not end with the container's last line", out.String())
		}
	})
	t.Run("no container", func(t *testing.T) {
		c, err := f.d.FindContainer(ctx, f.app+"-missing")
		if !errors.Is(err, ErrNoContainer) || c.Name != f.app+"-missing" {
			t.Errorf("FindContainer = %+v, %v; want the name looked for and ErrNoContainer", c, err)
		}
	})
}
