package service

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestProgramStopCancelsRun(t *testing.T) {
	t.Parallel()
	p := NewProgram(context.Background(), func(ctx context.Context) error { <-ctx.Done(); return nil }, zap.NewNop())
	p.exit = func(code int) { t.Errorf("exit(%d) after Stop", code) }
	if err := p.Start(nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(nil); err == nil {
		t.Error("second Start succeeded")
	}
	if err := p.Stop(nil); err != nil {
		t.Errorf("Stop() = %v", err)
	}
}

func TestProgramStopTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	p := NewProgram(context.Background(), func(context.Context) error { <-release; return nil }, zap.NewNop())
	p.StopTimeout = 20 * time.Millisecond
	p.exit = func(int) {}
	if err := p.Start(nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(nil); err == nil || err.Error() != "agent did not stop within 20ms" {
		t.Errorf("Stop() = %v", err)
	}
}

func TestProgramExitsWhenRunFails(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"fails", errors.New("not enrolled"), 1},
		{"parent ended", nil, 0},
	} {
		codes := make(chan int, 1)
		p := NewProgram(context.Background(), func(context.Context) error { return tc.err }, zap.NewNop())
		p.exit = func(code int) { codes <- code }
		if err := p.Start(nil); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-codes:
			if got != tc.want {
				t.Errorf("%s: exit(%d), want exit(%d)", tc.name, got, tc.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no exit", tc.name)
		}
	}
}
