// Package mask hides the values of sensitive variables in text that leaves
// a process: task logs, event messages. The agent masks before it spools
// or sends anything; the server masks again before it stores, as a second
// line of defence.
//
// Masking finds exact byte sequences. It cannot find a secret the program
// printed in another form (encoded, split by its own formatting), and it
// ignores values shorter than MinLen, which would mask common text.
package mask

import (
	"bytes"
	"io"
	"slices"
	"strings"
)

// MinLen is the shortest value that is masked.
const MinLen = 4

// Replacement stands for a masked value where lengths may change.
const Replacement = "********"

// Masker holds the secrets to hide. A nil or empty Masker changes nothing.
// It is safe for concurrent use; a Writer is not.
type Masker struct {
	// secrets, longest first, so that the longest match at a position wins.
	secrets [][]byte
}

// New returns a Masker for the secrets; duplicates and values shorter than
// MinLen are dropped.
func New(secrets []string) *Masker {
	m := &Masker{}
	seen := map[string]bool{}
	for _, s := range secrets {
		if len(s) < MinLen || seen[s] {
			continue
		}
		seen[s] = true
		m.secrets = append(m.secrets, []byte(s))
	}
	slices.SortStableFunc(m.secrets, func(a, b []byte) int { return len(b) - len(a) })
	return m
}

// Empty reports whether the Masker hides nothing.
func (m *Masker) Empty() bool { return m == nil || len(m.secrets) == 0 }

// MaxLen is the length of the longest secret, 0 when empty.
func (m *Masker) MaxLen() int {
	if m.Empty() {
		return 0
	}
	return len(m.secrets[0])
}

// String replaces every occurrence of a secret in s with Replacement.
func (m *Masker) String(s string) string {
	if m.Empty() || !m.containsAny(s) {
		return s
	}
	var out strings.Builder
	rest := []byte(s)
	for len(rest) > 0 {
		if n := m.matchAt(rest, true); n > 0 {
			out.WriteString(Replacement)
			rest = rest[n:]
			continue
		}
		out.WriteByte(rest[0])
		rest = rest[1:]
	}
	return out.String()
}

func (m *Masker) containsAny(s string) bool {
	for _, sec := range m.secrets {
		if strings.Contains(s, string(sec)) {
			return true
		}
	}
	return false
}

// matchAt returns the length of the longest secret b starts with, 0 for
// none, or -1 when b is complete==false and a secret longer than b starts
// with all of b (more input could still make it a match).
func (m *Masker) matchAt(b []byte, complete bool) int {
	for _, sec := range m.secrets {
		if len(b) >= len(sec) {
			if bytes.HasPrefix(b, sec) {
				return len(sec)
			}
		} else if !complete && bytes.HasPrefix(sec, b) {
			return -1
		}
	}
	return 0
}

// InPlace overwrites with '*' every byte of b that belongs to an
// occurrence of a secret in prefix followed by b, keeping b's length:
// for streams whose offsets must not move. prefix (the bytes just before
// b, e.g. the stored tail of a log) is only read; MaxLen()-1 bytes of it
// are enough.
func (m *Masker) InPlace(prefix, b []byte) {
	if m.Empty() || len(b) == 0 {
		return
	}
	if keep := m.MaxLen() - 1; len(prefix) > keep {
		prefix = prefix[len(prefix)-keep:]
	}
	joined := append(slices.Clip(prefix), b...)
	for _, sec := range m.secrets {
		for from := 0; ; {
			i := bytes.Index(joined[from:], sec)
			if i < 0 {
				break
			}
			start := from + i
			for j := max(start, len(prefix)); j < start+len(sec); j++ {
				b[j-len(prefix)] = '*'
			}
			from = start + 1
		}
	}
}

// Writer masks a stream written in pieces: a secret split across two
// Writes is still replaced. It holds back at most MaxLen()-1 bytes that
// could begin a secret; Flush writes them.
type Writer struct {
	m    *Masker
	w    io.Writer
	held []byte
}

// Writer returns a masking Writer onto w.
func (m *Masker) Writer(w io.Writer) *Writer { return &Writer{m: m, w: w} }

// Write masks p and writes what is certain not to be part of a secret. It
// returns len(p) unless the underlying writer fails.
func (w *Writer) Write(p []byte) (int, error) {
	if w.m.Empty() {
		return w.w.Write(p)
	}
	buf := append(w.held, p...)
	var out []byte
	i := 0
	for i < len(buf) {
		n := w.m.matchAt(buf[i:], false)
		if n < 0 {
			break
		}
		if n > 0 {
			out = append(out, Replacement...)
			i += n
			continue
		}
		out = append(out, buf[i])
		i++
	}
	w.held = append(w.held[:0:0], buf[i:]...)
	if len(out) > 0 {
		if _, err := w.w.Write(out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Flush writes the bytes held back, masked as if the stream ended here.
func (w *Writer) Flush() error {
	if len(w.held) == 0 {
		return nil
	}
	out := w.m.String(string(w.held))
	w.held = nil
	_, err := io.WriteString(w.w, out)
	return err
}
