package docker

import (
	"io"
	"testing"
	"time"

	"github.com/docker/docker/pkg/stdcopy"

	"github.com/tentacle-deploy/tentacle/internal/testimage"
)

// pipeOutput is an output reading a multiplexed stream written to w.
func pipeOutput(logs io.Writer) (*output, io.Writer, func()) {
	pr, pw := io.Pipe()
	o := copyStream(pr, logs, func(drain time.Duration) {
		time.AfterFunc(drain, func() { pr.Close() })
	}, func() { pr.Close() })
	return o, stdcopy.NewStdWriter(pw, stdcopy.Stdout), func() { pw.Close() }
}

func TestStopQuietEndsEarlyWhenNothingArrives(t *testing.T) {
	var logs testimage.SyncBuffer
	o, w, _ := pipeOutput(&logs)
	io.WriteString(w, "line 1\n")
	began := time.Now()
	o.stopQuiet(2*time.Second, 30*time.Millisecond)
	if d := time.Since(began); d < 30*time.Millisecond || d > time.Second {
		t.Errorf("stopQuiet took %s; want about the quiet time (30 ms), well under the 2 s drain", d)
	}
	if logs.String() != "line 1\n" {
		t.Errorf("logs %q", logs.String())
	}
}

func TestStopQuietWaitsForALineJustAfterTheEnd(t *testing.T) {
	var logs testimage.SyncBuffer
	o, w, _ := pipeOutput(&logs)
	go func() {
		time.Sleep(15 * time.Millisecond) // printed at the end of the gate, arriving late
		io.WriteString(w, "last line\n")
	}()
	o.stopQuiet(2*time.Second, 50*time.Millisecond)
	if logs.String() != "last line\n" {
		t.Errorf("logs %q: the line arriving 15 ms after the end of the gate is lost", logs.String())
	}
}

func TestStopQuietCutsABusyStreamAtTheDrain(t *testing.T) {
	var logs testimage.SyncBuffer
	o, w, _ := pipeOutput(&logs)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := io.WriteString(w, "busy\n"); err != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	defer close(stop)
	began := time.Now()
	o.stopQuiet(300*time.Millisecond, 30*time.Millisecond)
	if d := time.Since(began); d < 250*time.Millisecond {
		t.Errorf("stopQuiet took %s: a stream still printing was cut before the drain (300 ms)", d)
	}
}
