package docker

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
)

// How much of a failed container's output its task's failure message
// quotes: the last tailLines lines, each cut at tailLineBytes, so a
// container printing megabytes in one line cannot bloat the event.
const (
	tailLines     = 20
	tailLineBytes = 256
)

// logTail is an io.Writer keeping the last lines written to it.
type logTail struct {
	mu       sync.Mutex
	max      int // lines kept
	lineMax  int // bytes kept of each line
	lines    []string
	partial  []byte // the line being written, up to lineMax bytes
	cut      bool   // partial lost bytes beyond lineMax
	anything bool
}

func newLogTail(lines, lineBytes int) *logTail {
	return &logTail{max: lines, lineMax: lineBytes}
}

func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	if n > 0 {
		l.anything = true
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if room := l.lineMax - len(l.partial); len(chunk) > room {
			l.partial = append(l.partial, chunk[:room]...)
			l.cut = true
		} else {
			l.partial = append(l.partial, chunk...)
		}
		if i < 0 {
			break
		}
		l.endLine()
		p = p[i+1:]
	}
	return n, nil
}

func (l *logTail) endLine() {
	line := strings.TrimSuffix(string(l.partial), "\r")
	if l.cut {
		line += " …"
	}
	l.lines = append(l.lines, line)
	if len(l.lines) > l.max {
		l.lines = l.lines[len(l.lines)-l.max:]
	}
	l.partial, l.cut = l.partial[:0], false
}

// describe quotes the kept lines for a failure message about container name.
func (l *logTail) describe(name string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 || l.cut {
		l.endLine() // a last line without newline still counts
	}
	if !l.anything {
		return fmt.Sprintf("container %s printed nothing", name)
	}
	what := fmt.Sprintf("last %d lines", len(l.lines))
	if len(l.lines) == 1 {
		what = "last line"
	}
	return fmt.Sprintf("%s of output of container %s:\n%s", what, name, strings.Join(l.lines, "\n"))
}
