package journal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

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
		f, err := os.OpenFile(filepath.Join(j.taskDir(w.id), "log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
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
	return n, err
}

// ReadLog reads up to max bytes of the task's log from off.
func (j *Journal) ReadLog(taskID string, off uint64, max int) ([]byte, error) {
	f, err := os.Open(filepath.Join(j.taskDir(taskID), "log"))
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
	if off > t.logSize {
		off = t.logSize
	}
	t.progress.LogAcked = off
	return j.saveProgress(t)
}

// LogState is how much of a task's log exists and is acknowledged.
type LogState struct {
	TaskID string
	Size   uint64
	Acked  uint64
}

// LogsToPush lists tasks whose log has bytes the server has not stored.
func (j *Journal) LogsToPush() []LogState {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []LogState
	for id, t := range j.tasks {
		if t.logSize > t.progress.LogAcked {
			out = append(out, LogState{TaskID: id, Size: t.logSize, Acked: t.progress.LogAcked})
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].TaskID < out[b].TaskID })
	return out
}
