package journal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// The spooled log of a task is one file in its directory: "log", holding
// the stream from offset 0, or, once the spool cap has dropped bytes,
// "log@<base>", holding the stream from offset base (the bytes before it
// were acknowledged and are not kept). Offsets are always the stream's, as
// the server stores it: dropping never shifts a byte the server may have.

// LogInFlight is how far past the acknowledged offset a task's log may be
// sent (LogState.Limit). The spool cap never drops bytes below that point,
// so a byte the server may already hold is never changed.
const LogInFlight = 1 << 20

// LogWriter returns a writer appending to the task's spooled log. Writes
// are not synced one by one: a crash may lose the log's last bytes, never
// the events.
func (j *Journal) LogWriter(taskID string) io.Writer { return logWriter{j: j, id: taskID} }

type logWriter struct {
	j  *Journal
	id string
}

func (w logWriter) Write(p []byte) (int, error) {
	j := w.j
	j.mu.Lock()
	defer j.mu.Unlock()
	t, ok := j.tasks[w.id]
	if !ok {
		return 0, fmt.Errorf("journal: unknown task %s", w.id)
	}
	if t.finished() {
		return 0, fmt.Errorf("journal: task %s already finished", w.id)
	}
	if t.log == nil {
		f, err := os.OpenFile(j.logPath(t), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return 0, fmt.Errorf("journal: %w", err)
		}
		t.log = f
	}
	n, err := t.log.Write(p)
	t.logSize += uint64(n)
	if n > 0 {
		j.changedLocked()
	}
	if err != nil {
		return n, err
	}
	if j.logCap > 0 && t.logSize-t.progress.LogAcked > j.logCap {
		if err := j.dropLocked(t); err != nil {
			return n, err
		}
	}
	return n, nil
}

// logPath is the task's current log file.
func (j *Journal) logPath(t *task) string {
	if t.logBase == 0 && !t.logRebased {
		return filepath.Join(j.taskDir(t.a.TaskID), "log")
	}
	return filepath.Join(j.taskDir(t.a.TaskID), "log@"+strconv.FormatUint(t.logBase, 10))
}

// loadLog finds the task's log file: the one with the highest base; others
// are what a crash during a drop left, and are removed.
func (j *Journal) loadLog(t *task) error {
	dir := j.taskDir(t.a.TaskID)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	type candidate struct {
		name    string
		base    uint64
		rebased bool
	}
	var found []candidate
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == "log":
			found = append(found, candidate{name, 0, false})
		case strings.HasPrefix(name, "log@") && strings.HasSuffix(name, ".tmp"):
			os.Remove(filepath.Join(dir, name)) // a drop that did not finish
		case strings.HasPrefix(name, "log@"):
			if base, err := strconv.ParseUint(name[len("log@"):], 10, 64); err == nil {
				found = append(found, candidate{name, base, true})
			}
		}
	}
	if len(found) == 0 {
		return nil
	}
	sort.Slice(found, func(a, b int) bool {
		if found[a].base != found[b].base {
			return found[a].base < found[b].base
		}
		return !found[a].rebased
	})
	cur := found[len(found)-1]
	for _, c := range found[:len(found)-1] {
		os.Remove(filepath.Join(dir, c.name))
	}
	fi, err := os.Stat(filepath.Join(dir, cur.name))
	if err != nil {
		return err
	}
	t.logBase, t.logRebased, t.logSize = cur.base, cur.rebased, cur.base+uint64(fi.Size())
	return nil
}

// ReadLog reads up to max bytes of the task's log from off. Bytes the spool
// cap dropped after the server acknowledged them cannot be read.
func (j *Journal) ReadLog(taskID string, off uint64, max int) ([]byte, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	t, ok := j.tasks[taskID]
	if !ok {
		return nil, fmt.Errorf("journal: unknown task %s", taskID)
	}
	if off < t.logBase {
		return nil, fmt.Errorf("journal: task %s: log bytes before offset %d were acknowledged by the server and are no longer spooled", taskID, t.logBase)
	}
	return readAt(j.logPath(t), off-t.logBase, max)
}

func readAt(path string, off uint64, max int) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, max)
	n, err := f.ReadAt(buf, int64(off))
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return buf[:n], err
}

// AckLog records that the server durably stored the task's log up to off.
func (j *Journal) AckLog(taskID string, off uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	t, ok := j.tasks[taskID]
	if !ok || off == t.progress.LogAcked {
		return nil
	}
	// A server that lost bytes (restored from a backup) gets them again,
	// as far as they are still spooled.
	off = max(min(off, t.logSize), t.logBase)
	// On disk first: the spool cap's drops rely on the acknowledged offset
	// never being ahead of what a restart would read back.
	p := t.progress
	p.LogAcked = off
	if err := j.saveProgress(t.a.TaskID, p); err != nil {
		return err
	}
	t.progress = p
	return nil
}

// LogState is how much of a task's log exists and is acknowledged.
type LogState struct {
	TaskID string
	Size   uint64
	Acked  uint64
	// Limit is where sending must stop for now: Acked+LogInFlight, or
	// Size. Bytes past it may still be replaced by a gap marker.
	Limit uint64
}

// LogsToPush lists tasks whose log has bytes the server has not stored.
func (j *Journal) LogsToPush() []LogState {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []LogState
	for id, t := range j.tasks {
		if t.logSize > t.progress.LogAcked {
			out = append(out, LogState{TaskID: id, Size: t.logSize, Acked: t.progress.LogAcked,
				Limit: min(t.logSize, t.progress.LogAcked+j.inFlight)})
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].TaskID < out[b].TaskID })
	return out
}
