package journal

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
)

// SetLogCap bounds the bytes of each task's log that the server has not
// acknowledged (0, the default, is no bound). While the server is
// unreachable and a task's unacknowledged bytes exceed the cap, the oldest
// of them that were never sent are dropped, down to half the cap, and
// replaced by one marker line saying how many bytes are missing there; a
// marker still unsent absorbs the next drop, so a long outage leaves one
// marker. Bytes below Acked+LogInFlight are never dropped: the server may
// hold them. Call it before the first write.
func (j *Journal) SetLogCap(capBytes uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.logCap = capBytes
}

// lineScan is how far a drop looks for a line end, so that the marker
// stands on its own line; output without newlines is cut where it must.
const lineScan = 64 << 10

var markerRE = regexp.MustCompile(`^tentacle: (\d+) bytes of output dropped here: [^\n]*\n`)

// dropLocked replaces the oldest never-sent bytes of t's log by a marker,
// rewriting the spool as "log@<acked>": the bytes from the acknowledged
// offset to the drop, the marker, the bytes after it. The new file is
// complete on disk before it replaces the old one, so a crash leaves one
// or the other (loadLog).
func (j *Journal) dropLocked(t *task) error {
	acked, size := t.progress.LogAcked, t.logSize
	limit := min(size, acked+j.inFlight)
	if limit >= size {
		return nil
	}
	old := j.logPath(t)
	f, err := os.Open(old)
	if err != nil {
		return fmt.Errorf("journal: log spool cap: %w", err)
	}
	defer f.Close()
	read := func(off uint64, n int) []byte { // stream offsets
		buf := make([]byte, min(uint64(n), size-off))
		m, _ := f.ReadAt(buf, int64(off-t.logBase))
		return buf[:m]
	}
	lineEnd := func(off uint64) (uint64, bool) { // the next line start at or after off
		if off == t.logBase || (off > t.logBase && string(read(off-1, 1)) == "\n") {
			return off, true
		}
		for i, b := range read(off, lineScan) {
			if b == '\n' {
				return off + uint64(i) + 1, true
			}
		}
		return off, false
	}

	from, atLine := lineEnd(limit)
	lead := "\n"
	if atLine {
		lead = ""
	}
	var dropped, oldMarker uint64
	if m := markerRE.FindSubmatch(read(from, 512)); m != nil {
		n, _ := strconv.ParseUint(string(m[1]), 10, 64)
		dropped, oldMarker = n, uint64(len(m[0]))
	}
	marker := func(n uint64) string {
		return fmt.Sprintf("%stentacle: %d bytes of output dropped here: the log spool cap (%s) was reached while the server was unreachable\n", lead, n, formatSize(j.logCap))
	}
	// Down to half the cap, so that the rewrite is not repeated on every
	// write: it costs at most half a cap of copying per half a cap written.
	excess := size - acked - j.logCap/2
	to := min(size, from+max(excess+uint64(len(marker(size))), oldMarker))
	if to < size {
		to, _ = lineEnd(to)
	}
	if to <= from {
		return nil
	}
	dropped += to - from - oldMarker
	text := marker(dropped)

	dir := j.taskDir(t.a.TaskID)
	name := "log@" + strconv.FormatUint(acked, 10)
	tmp := filepath.Join(dir, name+".tmp")
	nf, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("journal: log spool cap: %w", err)
	}
	_, err = io.Copy(nf, io.NewSectionReader(f, int64(acked-t.logBase), int64(from-acked)))
	if err == nil {
		_, err = io.WriteString(nf, text)
	}
	if err == nil {
		_, err = io.Copy(nf, io.NewSectionReader(f, int64(to-t.logBase), int64(size-to)))
	}
	if err == nil {
		err = nf.Sync()
	}
	if cerr := nf.Close(); err == nil {
		err = cerr
	}
	f.Close()
	if err == nil && t.log != nil {
		// Closed before the rename: Windows renames no open file.
		err = t.log.Close()
		t.log = nil
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("journal: log spool cap: %w", err)
	}
	t.logBase, t.logRebased = acked, true
	t.logSize = size - (to - from) + uint64(len(text))
	if cur := j.logPath(t); cur != old {
		os.Remove(old)
	}
	return nil
}

// formatSize writes a byte count the way the config accepts it.
func formatSize(n uint64) string {
	for _, u := range []struct {
		size uint64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatUint(n/u.size, 10) + " " + u.name
		}
	}
	return strconv.FormatUint(n, 10) + " bytes"
}
