// Package journal is the agent's durable local state: every task it has
// accepted, the events it produced for each (with sequence numbers and how
// far the server has acknowledged them) and the task's spooled log.
//
// A task is written here, and synced, before the agent acknowledges it; a
// redelivered task id is recognised and never run twice. Events and log
// bytes stay here until the server acknowledges them, so they survive a
// broken link or an agent restart.
//
// It knows nothing of gRPC or Docker.
package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/tentacle-deploy/tentacle/internal/spec"
)

// Assignment is a task as the server sent it.
type Assignment struct {
	TaskID          string       `json:"task_id"`
	DeploymentID    string       `json:"deployment_id"`
	ReleaseID       string       `json:"release_id"`
	ReleaseVersion  string       `json:"release_version"`
	Application     string       `json:"application"`
	ImageRepository string       `json:"image_repository"`
	ImageTag        string       `json:"image_tag"`
	ImageDigest     string       `json:"image_digest"`
	RunSpec         spec.RunSpec `json:"run_spec"`
	// SensitiveEnv names the RunSpec.Env entries whose values are secret:
	// they are masked in everything the task reports.
	SensitiveEnv []string  `json:"sensitive_env,omitempty"`
	AcceptedAt   time.Time `json:"accepted_at"`
}

// Event is one state change or progress note of a task.
type Event struct {
	Seq         uint64 `json:"seq"`
	State       string `json:"state"`
	Message     string `json:"message,omitempty"`
	ImageDigest string `json:"image_digest,omitempty"`
	ContainerID string `json:"container_id,omitempty"`
	FailureKind string `json:"failure_kind,omitempty"`
	LogBytes    int64  `json:"log_bytes,omitempty"`
	// ProgressBytes and ProgressTotal are a pull's bytes downloaded so far
	// and in all (0 when unknown).
	ProgressBytes int64     `json:"progress_bytes,omitempty"`
	ProgressTotal int64     `json:"progress_total,omitempty"`
	Final         bool      `json:"final,omitempty"`
	At            time.Time `json:"at"`
}

// progress is what the server has acknowledged, rewritten atomically.
type progress struct {
	EventsAcked uint64 `json:"events_acked"`
	LogAcked    uint64 `json:"log_acked"`
}

type task struct {
	a        Assignment
	events   []Event
	progress progress
	logSize  uint64 // the log stream's length, as the server counts it
	// logBase is the stream offset of the log file's first byte; it is
	// above 0 once the spool cap has rewritten the file (logRebased).
	logBase    uint64
	logRebased bool
	log        *os.File // open for append while the task runs
}

// Journal is safe for concurrent use.
type Journal struct {
	dir   string
	mu    sync.Mutex
	tasks map[string]*task
	wake  chan struct{}
	// logCap bounds each task's unacknowledged log bytes (0: no bound);
	// inFlight is LogInFlight, smaller in tests.
	logCap, inFlight uint64
}

// HeldTask summarises a journaled task for the session's Hello.
type HeldTask struct {
	TaskID   string
	LastSeq  uint64
	Finished bool
}

// Open loads every task under dir (created 0700 if missing).
func Open(dir string) (*Journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	j := &Journal{dir: dir, tasks: map[string]*task{}, wake: make(chan struct{}), inFlight: LogInFlight}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		t, err := j.load(e.Name())
		if err != nil {
			return nil, fmt.Errorf("journal: task %s: %w", e.Name(), err)
		}
		if t != nil {
			j.tasks[t.a.TaskID] = t
		}
	}
	return j, nil
}

func (j *Journal) taskDir(id string) string { return filepath.Join(j.dir, id) }

func (j *Journal) load(id string) (*task, error) {
	data, err := os.ReadFile(filepath.Join(j.taskDir(id), "task.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // crashed between mkdir and write: never acknowledged
	}
	if err != nil {
		return nil, err
	}
	t := &task{}
	if err := json.Unmarshal(data, &t.a); err != nil {
		return nil, fmt.Errorf("task.json: %w", err)
	}
	if t.events, err = readEvents(filepath.Join(j.taskDir(id), "events.jsonl")); err != nil {
		return nil, err
	}
	if data, err := os.ReadFile(filepath.Join(j.taskDir(id), "progress.json")); err == nil {
		if err := json.Unmarshal(data, &t.progress); err != nil {
			return nil, fmt.Errorf("progress.json: %w", err)
		}
	}
	if err := j.loadLog(t); err != nil {
		return nil, fmt.Errorf("log: %w", err)
	}
	t.progress.LogAcked = max(t.progress.LogAcked, t.logBase)
	return t, nil
}

// readEvents reads the event log. A torn last line (a crash mid-write) is
// cut off, since its event was never sent, so the next append starts clean.
func readEvents(path string) ([]Event, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Event
	good := 0
	for good < len(data) {
		nl := bytes.IndexByte(data[good:], '\n')
		if nl < 0 {
			break
		}
		var e Event
		if err := json.Unmarshal(data[good:good+nl], &e); err != nil {
			break
		}
		out = append(out, e)
		good += nl + 1
	}
	if good < len(data) {
		if err := os.Truncate(path, int64(good)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Accept journals a task and reports whether it is new. It returns only
// after the task is on disk, so it is safe to acknowledge afterwards.
func (j *Journal) Accept(a Assignment) (bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, ok := j.tasks[a.TaskID]; ok {
		return false, nil
	}
	if a.TaskID == "" || filepath.Base(a.TaskID) != a.TaskID || a.TaskID == "." || a.TaskID == ".." {
		return false, fmt.Errorf("journal: invalid task id %q", a.TaskID)
	}
	dir := j.taskDir(a.TaskID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("journal: %w", err)
	}
	a.AcceptedAt = time.Now().UTC()
	data, err := json.Marshal(a)
	if err != nil {
		return false, err
	}
	if err := writeSynced(filepath.Join(dir, "task.json"), data); err != nil {
		return false, fmt.Errorf("journal: %w", err)
	}
	j.tasks[a.TaskID] = &task{a: a}
	return true, nil
}

// Append gives the event the task's next sequence number and writes it
// durably before it may be sent.
func (j *Journal) Append(taskID string, e Event) (Event, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	t, ok := j.tasks[taskID]
	if !ok {
		return Event{}, fmt.Errorf("journal: unknown task %s", taskID)
	}
	if n := len(t.events); n > 0 && t.events[n-1].Final {
		return Event{}, fmt.Errorf("journal: task %s already finished", taskID)
	}
	e.Seq = uint64(len(t.events)) + 1
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	if e.Final {
		e.LogBytes = int64(t.logSize)
		if t.log != nil {
			t.log.Close()
			t.log = nil
		}
	}
	line, err := json.Marshal(e)
	if err != nil {
		return Event{}, err
	}
	f, err := os.OpenFile(filepath.Join(j.taskDir(taskID), "events.jsonl"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return Event{}, fmt.Errorf("journal: %w", err)
	}
	_, err = f.Write(append(line, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Event{}, fmt.Errorf("journal: append event: %w", err)
	}
	t.events = append(t.events, e)
	j.changedLocked()
	return e, nil
}

// AckEvents records that the server stored the task's events up to seq.
func (j *Journal) AckEvents(taskID string, seq uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	t, ok := j.tasks[taskID]
	if !ok || seq <= t.progress.EventsAcked {
		return nil
	}
	if seq > uint64(len(t.events)) {
		seq = uint64(len(t.events))
	}
	p := t.progress
	p.EventsAcked = seq
	if err := j.saveProgress(taskID, p); err != nil {
		return err
	}
	t.progress = p
	return nil
}

func (j *Journal) saveProgress(taskID string, p progress) error {
	data, _ := json.Marshal(p)
	if err := writeSynced(filepath.Join(j.taskDir(taskID), "progress.json"), data); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// Assignment returns a journaled task.
func (j *Journal) Assignment(taskID string) (Assignment, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	t, ok := j.tasks[taskID]
	if !ok {
		return Assignment{}, false
	}
	return t.a, true
}

// Held lists every journaled task, for Hello.
func (j *Journal) Held() []HeldTask {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]HeldTask, 0, len(j.tasks))
	for _, t := range j.tasks {
		out = append(out, HeldTask{TaskID: t.a.TaskID, LastSeq: uint64(len(t.events)), Finished: t.finished()})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].TaskID < out[b].TaskID })
	return out
}

func (t *task) finished() bool { n := len(t.events); return n > 0 && t.events[n-1].Final }

// Unfinished lists tasks that were accepted but never reached a final event.
func (j *Journal) Unfinished() []Assignment {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []Assignment
	for _, t := range j.tasks {
		if !t.finished() {
			out = append(out, t.a)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].AcceptedAt.Before(out[b].AcceptedAt) })
	return out
}

// EventsAfter returns the task's events with sequence above seq.
func (j *Journal) EventsAfter(taskID string, seq uint64) []Event {
	j.mu.Lock()
	defer j.mu.Unlock()
	t, ok := j.tasks[taskID]
	if !ok || seq >= uint64(len(t.events)) {
		return nil
	}
	return append([]Event(nil), t.events[seq:]...)
}

// Unacked maps each task with events the server has not acknowledged to
// its acknowledged sequence number.
func (j *Journal) Unacked() map[string]uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := map[string]uint64{}
	for id, t := range j.tasks {
		if uint64(len(t.events)) > t.progress.EventsAcked {
			out[id] = t.progress.EventsAcked
		}
	}
	return out
}

// Wait returns a channel closed at the next new event or log write.
func (j *Journal) Wait() <-chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.wake
}

func (j *Journal) changedLocked() {
	close(j.wake)
	j.wake = make(chan struct{})
}

func writeSynced(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
