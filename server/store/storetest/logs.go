package storetest

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/tentacle-deploy/tentacle/server/store"
)

var logTests = []namedTest{
	{"AppendTaskLog", testAppendTaskLog},
	{"ReadTaskLog", testReadTaskLog},
	{"ReadTaskLogLarge", testReadTaskLogLarge},
	{"TaskLogSize", testTaskLogSize},
}

// logTask returns a store with one task and its ID.
func logTask(t *testing.T, s store.Store) (*fixture, string) {
	f := newFixture(t, s, 1)
	f.deploy(t, "dep-1", t0, f.targets[0])
	return f, taskID("dep-1", f.targets[0])
}

func testAppendTaskLog(t *testing.T, s store.Store) {
	f, id := logTask(t, s)
	steps := []struct {
		name   string
		offset uint64
		data   string
		want   uint64 // stored length after the step
		err    error
	}{
		{"first chunk", 0, "hello", 5, nil},
		{"empty chunk at the end", 5, "", 5, nil},
		{"next chunk", 5, " wor", 9, nil},
		{"resent chunk", 5, " wor", 9, nil},
		{"resent prefix", 0, "he", 9, nil},
		{"partial overlap", 7, "orld\n", 12, nil},
		{"overlap of the whole log", 0, "hello world\nbye\n", 16, nil},
		{"gap", 17, "x", 0, store.ErrLogGap},
		{"gap far ahead", 1 << 40, "x", 0, store.ErrLogGap},
	}
	for _, st := range steps {
		got, err := s.AppendTaskLog(f.ctx, id, st.offset, []byte(st.data))
		if st.err != nil {
			wantErr(t, err, st.err, fmt.Sprintf("%q", id))
			continue
		}
		must(t, err)
		if got != st.want {
			t.Errorf("%s: stored length %d, want %d", st.name, got, st.want)
		}
	}
	log, err := s.ReadTaskLog(f.ctx, id, 0, 1<<20)
	must(t, err)
	wantEqual(t, "log", string(log), "hello world\nbye\n")

	_, err = s.AppendTaskLog(f.ctx, "task-nope", 0, []byte("x"))
	wantErr(t, err, store.ErrNotFound, `"task-nope"`)
}

func testReadTaskLog(t *testing.T, s store.Store) {
	f, id := logTask(t, s)
	for _, chunk := range []string{"abc", "defg", "h", "ijklmn"} {
		size, err := s.TaskLogSize(f.ctx, id)
		must(t, err)
		_, err = s.AppendTaskLog(f.ctx, id, size, []byte(chunk))
		must(t, err)
	}
	const all = "abcdefghijklmn"
	cases := []struct {
		offset uint64
		max    int
		want   string
	}{
		{0, 100, all},
		{0, 14, all},
		{0, 3, "abc"},
		{0, 4, "abcd"},
		{1, 2, "bc"},
		{2, 6, "cdefgh"},
		{3, 4, "defg"},
		{7, 1, "h"},
		{6, 3, "ghi"},
		{13, 10, "n"},
		{14, 10, ""},
		{100, 10, ""},
		{5, 0, ""},
	}
	for _, c := range cases {
		got, err := s.ReadTaskLog(f.ctx, id, c.offset, c.max)
		must(t, err)
		if string(got) != c.want {
			t.Errorf("ReadTaskLog(%d, %d) = %q, want %q", c.offset, c.max, got, c.want)
		}
	}

	f.deploy(t, "dep-2", t0, f.targets[0])
	got, err := s.ReadTaskLog(f.ctx, taskID("dep-2", f.targets[0]), 0, 10)
	must(t, err)
	wantEqual(t, "bytes read from an empty log", len(got), 0)
	_, err = s.ReadTaskLog(f.ctx, "task-nope", 0, 10)
	wantErr(t, err, store.ErrNotFound, `"task-nope"`)
}

// testReadTaskLogLarge writes a log of several MB in uneven chunks, with
// resends, and reads it back in windows that cut across them.
func testReadTaskLogLarge(t *testing.T, s store.Store) {
	f, id := logTask(t, s)
	want := make([]byte, 6<<20)
	for i := range want {
		want[i] = byte('a' + i%23 + i/7919%3)
	}
	var off uint64
	for i := 0; off < uint64(len(want)); i++ {
		n := uint64(20000 + i*7919%50000)
		end := min(off+n, uint64(len(want)))
		from := off
		if i%5 == 4 {
			from = off - min(off, 1000) // resend the last kilobyte with the new bytes
		}
		size, err := s.AppendTaskLog(f.ctx, id, from, want[from:end])
		must(t, err)
		if size != end {
			t.Fatalf("stored length %d, want %d", size, end)
		}
		off = end
	}
	var got []byte
	for window := 0; ; window++ {
		n := 65536 + window%3*1000
		b, err := s.ReadTaskLog(f.ctx, id, uint64(len(got)), n)
		must(t, err)
		if len(b) == 0 {
			break
		}
		if len(b) > n {
			t.Fatalf("read %d bytes, asked for at most %d", len(b), n)
		}
		got = append(got, b...)
		if len(got) > len(want) {
			t.Fatalf("read %d bytes of a %d-byte log", len(got), len(want))
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes, not the %d written", len(got), len(want))
	}
}

func testTaskLogSize(t *testing.T, s store.Store) {
	f, id := logTask(t, s)
	size, err := s.TaskLogSize(f.ctx, id)
	must(t, err)
	wantEqual(t, "size of an empty log", size, uint64(0))
	_, err = s.AppendTaskLog(f.ctx, id, 0, []byte("0123456789"))
	must(t, err)
	_, err = s.AppendTaskLog(f.ctx, id, 5, []byte("56789abc"))
	must(t, err)
	size, err = s.TaskLogSize(f.ctx, id)
	must(t, err)
	wantEqual(t, "size", size, uint64(13))
	_, err = s.TaskLogSize(f.ctx, "task-nope")
	wantErr(t, err, store.ErrNotFound, `"task-nope"`)
}
