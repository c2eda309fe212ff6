package journal

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// logServer stands in for the server's log store: it keeps the stream as
// sent and refuses a resent byte that differs from the one it holds.
type logServer struct {
	t    *testing.T
	data []byte
}

// push sends what the journal allows from the acknowledged offset, as a
// new PushLogs stream does; with ack the server's answer arrives.
func (s *logServer) push(j *Journal, id string, ack bool) {
	s.t.Helper()
	for _, st := range j.LogsToPush() {
		for pos := st.Acked; pos < st.Limit; {
			chunk, err := j.ReadLog(id, pos, int(min(64, st.Limit-pos)))
			if err != nil || len(chunk) == 0 {
				s.t.Fatalf("ReadLog(%d) = %q, %v", pos, chunk, err)
			}
			for i, b := range chunk {
				off := pos + uint64(i)
				switch {
				case off < uint64(len(s.data)) && s.data[off] != b:
					s.t.Fatalf("byte %d resent as %q, the server holds %q: the spool changed a byte the server may have", off, b, s.data[off])
				case off == uint64(len(s.data)):
					s.data = append(s.data, b)
				case off > uint64(len(s.data)):
					s.t.Fatalf("chunk at %d leaves a gap after the %d bytes the server holds", off, len(s.data))
				}
			}
			pos += uint64(len(chunk))
		}
	}
	if ack {
		if err := j.AckLog(id, uint64(len(s.data))); err != nil {
			s.t.Fatal(err)
		}
	}
}

var markerLine = regexp.MustCompile(`^tentacle: (\d+) bytes of output dropped here: the log spool cap \(1000 bytes\) was reached while the server was unreachable$`)

// checkStream checks a log stream made of lines "line N" written with N
// from 0 to n-1: the lines kept are in order, each once, and every run of
// missing lines is replaced by markers that count its bytes exactly.
func checkStream(t *testing.T, stream []byte, n int) (markers int) {
	t.Helper()
	if !bytes.HasSuffix(stream, []byte("\n")) {
		t.Fatalf("stream does not end with a line end: %q", stream)
	}
	next, missing := 0, 0
	for _, l := range strings.Split(strings.TrimSuffix(string(stream), "\n"), "\n") {
		if m := markerLine.FindStringSubmatch(l); m != nil {
			d, _ := strconv.Atoi(m[1])
			missing += d
			markers++
			continue
		}
		k, err := strconv.Atoi(strings.TrimPrefix(l, "line "))
		if err != nil || !strings.HasPrefix(l, "line ") {
			t.Fatalf("line %q is neither output nor a marker", l)
		}
		for ; next < k; next++ {
			missing -= len(fmt.Sprintf("line %d\n", next))
		}
		if k != next {
			t.Fatalf("line %d out of order or repeated (expected %d)", k, next)
		}
		if missing != 0 {
			t.Fatalf("before line %d the markers count %d bytes more than are missing", k, missing)
		}
		next++
	}
	if next != n {
		t.Fatalf("the stream ends at line %d, want %d (the newest output is never dropped)", next-1, n-1)
	}
	return markers
}

// openCapped opens the journal with a 1000-byte cap and 100 bytes in
// flight, small enough for a test to pass them many times.
func openCapped(t *testing.T, dir string) *Journal {
	t.Helper()
	j, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	j.inFlight = 100
	j.SetLogCap(1000)
	return j
}

func writeLines(t *testing.T, j *Journal, id string, from, to int) {
	t.Helper()
	w := j.LogWriter(id)
	for i := from; i < to; i++ {
		if _, err := fmt.Fprintf(w, "line %d\n", i); err != nil {
			t.Fatal(err)
		}
		for _, st := range j.LogsToPush() {
			if st.Size-st.Acked > 1000 {
				t.Fatalf("after line %d, %d bytes unacknowledged: over the 1000-byte cap", i, st.Size-st.Acked)
			}
		}
	}
}

// While the server is unreachable the spool stays under its cap; the bytes
// dropped are the oldest never sent, replaced by one marker; the stream
// survives a restart as it was.
func TestLogSpoolCapKeepsOneMarkerForAnOutage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	j := openCapped(t, dir)
	j.Accept(assignment("t1"))
	srv := &logServer{t: t}
	writeLines(t, j, "t1", 0, 20)
	srv.push(j, "t1", true) // the link works
	writeLines(t, j, "t1", 20, 2000)
	// The link is down: nothing sent, nothing acknowledged.
	st := j.LogsToPush()[0]
	stream, err := j.ReadLog("t1", st.Acked, int(st.Size-st.Acked))
	if err != nil {
		t.Fatal(err)
	}
	if m := checkStream(t, append(append([]byte(nil), srv.data...), stream...), 2000); m != 1 {
		t.Errorf("%d markers for one outage, want 1", m)
	}

	j2 := openCapped(t, dir)
	if st2 := j2.LogsToPush()[0]; st2 != st {
		t.Fatalf("after a restart the log is %+v, want %+v", st2, st)
	}
	again, _ := j2.ReadLog("t1", st.Acked, int(st.Size-st.Acked))
	if !bytes.Equal(again, stream) {
		t.Fatal("the spooled log changed across a restart")
	}
	srv.push(j2, "t1", true)
	writeLines(t, j2, "t1", 2000, 2010)
	for len(j2.LogsToPush()) > 0 {
		srv.push(j2, "t1", true)
	}
	e, err := j2.Append("t1", Event{State: "succeeded", Final: true})
	if err != nil {
		t.Fatal(err)
	}
	if e.LogBytes != int64(len(srv.data)) {
		t.Errorf("final event says the log has %d bytes, the server holds %d", e.LogBytes, len(srv.data))
	}
	checkStream(t, srv.data, 2010)
	if _, err := j2.ReadLog("t1", 0, 10); err == nil {
		t.Error("ReadLog of bytes dropped from the spool after their ack succeeded")
	}
}

// Bytes the server may hold (sent, acknowledgement lost) are never dropped
// or changed, however the outage, the sends and the acks interleave: the
// server's copy is always a prefix of the stream, without a gap.
func TestLogSpoolCapNeverChangesWhatMayHaveBeenSent(t *testing.T) {
	t.Parallel()
	j := openCapped(t, t.TempDir())
	j.Accept(assignment("t1"))
	srv := &logServer{t: t}
	line := 0
	for round := range 40 {
		next := line + 17*(round%5) + 3
		writeLines(t, j, "t1", line, next)
		line = next
		switch round % 4 {
		case 0: // sent and stored, the ack lost
			srv.push(j, "t1", false)
		case 1: // down
		default:
			srv.push(j, "t1", true)
		}
	}
	for len(j.LogsToPush()) > 0 {
		srv.push(j, "t1", true)
	}
	if checkStream(t, srv.data, line) == 0 {
		t.Error("no marker: the test wrote too little to reach the cap")
	}
}

// A crash during a drop leaves the old file, the new one, or a torn
// temporary: the journal reopens on the newest complete one.
func TestLogSpoolReopensAfterACrashDuringADrop(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	j := openCapped(t, dir)
	j.Accept(assignment("t1"))
	writeLines(t, j, "t1", 0, 200)
	st := j.LogsToPush()[0]
	want, _ := j.ReadLog("t1", 0, int(st.Size))
	tdir := filepath.Join(dir, "t1")
	// What an interrupted later drop leaves: a stale "log" and a torn temporary.
	os.WriteFile(filepath.Join(tdir, "log"), []byte("stale\n"), 0o600)
	os.WriteFile(filepath.Join(tdir, "log@0.tmp"), []byte("torn"), 0o600)
	j2 := openCapped(t, dir)
	got, _ := j2.ReadLog("t1", 0, int(st.Size))
	if !bytes.Equal(got, want) || j2.LogsToPush()[0] != st {
		t.Fatalf("after reopening, log %+v = %q, want %+v = %q", j2.LogsToPush()[0], got, st, want)
	}
	entries, _ := os.ReadDir(tdir)
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "log") {
			names = append(names, e.Name())
		}
	}
	if strings.Join(names, ",") != "log@0" {
		t.Errorf("log files after reopening: %v, want only log@0", names)
	}
}
