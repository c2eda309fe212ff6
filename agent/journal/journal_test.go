package journal

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/internal/spec"
)

func assignment(id string) Assignment {
	return Assignment{TaskID: id, DeploymentID: "d1", Application: "web", ImageRepository: "127.0.0.1:5000/team/web",
		ImageTag: "1.0", RunSpec: spec.RunSpec{Env: []spec.EnvVar{{Name: "A", Value: "1"}}}}
}

func TestAcceptIsOnceAndSurvivesReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	j, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if isNew, err := j.Accept(assignment("t1")); err != nil || !isNew {
		t.Fatalf("first Accept = %v, %v; want new", isNew, err)
	}
	if isNew, err := j.Accept(assignment("t1")); err != nil || isNew {
		t.Fatalf("second Accept = %v, %v; want not new", isNew, err)
	}
	j2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if isNew, _ := j2.Accept(assignment("t1")); isNew {
		t.Fatal("a redelivered task was new again after reopening the journal: it would run twice")
	}
	got, ok := j2.Assignment("t1")
	if !ok || got.RunSpec.Env[0].Value != "1" || got.AcceptedAt.IsZero() {
		t.Fatalf("reloaded assignment = %+v", got)
	}
	fi, err := os.Stat(filepath.Join(dir, "t1", "task.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("task.json mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
}

func TestAcceptRejectsPathTricks(t *testing.T) {
	t.Parallel()
	j, _ := Open(t.TempDir())
	for _, id := range []string{"", "..", "a/b", "../x"} {
		if _, err := j.Accept(assignment(id)); err == nil {
			t.Errorf("Accept(%q) succeeded; want an error", id)
		}
	}
}

func TestEventsSequenceAckAndResend(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	j, _ := Open(dir)
	j.Accept(assignment("t1"))
	for _, s := range []string{"pulling", "starting", "verifying"} {
		if _, err := j.Append("t1", Event{State: s}); err != nil {
			t.Fatal(err)
		}
	}
	if got := j.Unacked()["t1"]; got != 0 {
		t.Fatalf("acked = %d, want 0", got)
	}
	if err := j.AckEvents("t1", 2); err != nil {
		t.Fatal(err)
	}
	evs := j.EventsAfter("t1", 2)
	if len(evs) != 1 || evs[0].Seq != 3 || evs[0].State != "verifying" {
		t.Fatalf("events after 2 = %+v", evs)
	}
	// A restart resends only what the server has not acknowledged.
	j2, _ := Open(dir)
	if acked, ok := j2.Unacked()["t1"]; !ok || acked != 2 {
		t.Fatalf("after reopen Unacked = %v", j2.Unacked())
	}
	j2.AckEvents("t1", 3)
	if len(j2.Unacked()) != 0 {
		t.Fatalf("all acked, Unacked = %v", j2.Unacked())
	}
}

func TestFinalEventRecordsLogLengthAndCloses(t *testing.T) {
	t.Parallel()
	j, _ := Open(t.TempDir())
	j.Accept(assignment("t1"))
	w := j.LogWriter("t1")
	w.Write([]byte("line 1\n"))
	w.Write([]byte("line 2\n"))
	e, err := j.Append("t1", Event{State: "succeeded", Final: true})
	if err != nil || e.LogBytes != 14 {
		t.Fatalf("final event = %+v, %v; want LogBytes 14", e, err)
	}
	if _, err := j.Append("t1", Event{State: "failed"}); err == nil {
		t.Fatal("event after the final one accepted")
	}
	if _, err := w.Write([]byte("late")); err == nil {
		t.Fatal("log write after the final event accepted")
	}
	if h := j.Held(); len(h) != 1 || !h[0].Finished || h[0].LastSeq != 1 {
		t.Fatalf("Held = %+v", h)
	}
	if len(j.Unfinished()) != 0 {
		t.Fatalf("Unfinished = %+v", j.Unfinished())
	}
}

func TestLogSpoolReadAckAndTornEventLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	j, _ := Open(dir)
	j.Accept(assignment("t1"))
	w := j.LogWriter("t1")
	var want bytes.Buffer
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 50; k++ {
				mu.Lock()
				want.WriteString("0123456789\n")
				w.Write([]byte("0123456789\n"))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	st := j.LogsToPush()
	if len(st) != 1 || st[0].Size != uint64(want.Len()) || st[0].Acked != 0 {
		t.Fatalf("LogsToPush = %+v, want size %d", st, want.Len())
	}
	got, _ := j.ReadLog("t1", 11, 22)
	if string(got) != "0123456789\n0123456789\n" {
		t.Fatalf("ReadLog = %q", got)
	}
	j.AckLog("t1", uint64(want.Len()))
	if len(j.LogsToPush()) != 0 {
		t.Fatal("fully acked log still listed")
	}
	j.Append("t1", Event{State: "pulling"})
	// A crash in the middle of writing an event leaves a torn line.
	f, _ := os.OpenFile(filepath.Join(dir, "t1", "events.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte(`{"seq":2,"sta`))
	f.Close()
	j2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if h := j2.Held(); h[0].LastSeq != 1 {
		t.Fatalf("torn event counted: %+v", h)
	}
	if len(j2.Unfinished()) != 1 {
		t.Fatal("task with no final event not listed as unfinished")
	}
	if e, err := j2.Append("t1", Event{State: "failed", Final: true}); err != nil || e.Seq != 2 {
		t.Fatalf("append after torn line = %+v, %v", e, err)
	}
	j3, _ := Open(dir)
	if h := j3.Held(); h[0].LastSeq != 2 || !h[0].Finished {
		t.Fatalf("after repair Held = %+v", h)
	}
}

func TestPruneRemovesOnlyFinishedAcknowledgedOldTasks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	j, _ := Open(dir)
	old := time.Now().Add(-48 * time.Hour)
	finish := func(id string, ack bool, at time.Time) {
		j.Accept(assignment(id))
		j.LogWriter(id).Write([]byte("line 1\n"))
		e, _ := j.Append(id, Event{State: "succeeded", Final: true, At: at})
		if ack {
			j.AckEvents(id, e.Seq)
			j.AckLog(id, 7)
		}
	}
	finish("done-old", true, old)
	finish("done-new", true, time.Now())
	finish("unacked-old", false, old)
	j.Accept(assignment("running"))
	j.Append("running", Event{State: "pulling", At: old})

	n, err := j.Prune(time.Now().Add(-24 * time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "done-old")); !os.IsNotExist(err) {
		t.Fatalf("pruned task's directory still there: %v", err)
	}
	j2, _ := Open(dir)
	var held []string
	for _, h := range j2.Held() {
		held = append(held, h.TaskID)
	}
	if strings.Join(held, ",") != "done-new,running,unacked-old" {
		t.Fatalf("after prune and reopen the journal holds %v", held)
	}
}

// SpooledLines counts the program's lines in the log, not the agent's own,
// and says how much of an unfinished last line is there; after a reopen
// (an agent restart) too.
func TestSpooledLinesCountsTheProgramsOutput(t *testing.T) {
	dir := t.TempDir()
	j, _ := Open(dir)
	j.Accept(assignment("t1"))
	w := j.LogWriter("t1")
	io.WriteString(w, "tentacle: pulling\nline 1\nline 2\ntentacle: starting\nline 3\nli")
	j2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	lines, partial, ok, err := j2.SpooledLines("t1", "tentacle: ")
	if err != nil || !ok || lines != 3 || partial != 2 {
		t.Fatalf("SpooledLines = %d, %d, %v, %v; want 3, 2, true", lines, partial, ok, err)
	}
	j2.Accept(assignment("t2"))
	if lines, partial, ok, err := j2.SpooledLines("t2", "tentacle: "); err != nil || !ok || lines != 0 || partial != 0 {
		t.Fatalf("empty log: %d, %d, %v, %v", lines, partial, ok, err)
	}
}
