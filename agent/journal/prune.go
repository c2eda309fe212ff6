package journal

import (
	"fmt"
	"os"
	"time"
)

// Prune removes tasks that finished before cutoff and whose events and log
// the server has fully acknowledged. It is safe: the server holds their
// outcome and never assigns a finished task again, so forgetting one cannot
// make it run twice. It returns how many tasks it removed.
func (j *Journal) Prune(cutoff time.Time) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := 0
	for id, t := range j.tasks {
		if !t.finished() || t.log != nil {
			continue
		}
		last := t.events[len(t.events)-1]
		acked := t.progress.EventsAcked >= uint64(len(t.events)) && t.progress.LogAcked >= t.logSize
		if !acked || !last.At.Before(cutoff) {
			continue
		}
		if err := os.RemoveAll(j.taskDir(id)); err != nil {
			return n, fmt.Errorf("journal: prune %s: %w", id, err)
		}
		delete(j.tasks, id)
		n++
	}
	return n, nil
}
