package mask

import (
	"bytes"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	m := New([]string{"hunter22", "abc", "s3cr3t", "s3cr3t-longer"})
	cases := []struct{ in, want string }{
		{"password=hunter22;", "password=********;"},
		{"abc is too short to mask", "abc is too short to mask"},
		{"s3cr3t-longer and s3cr3t", "******** and ********"},
		{"hunter22hunter22", "****************"},
		{"nothing here", "nothing here"},
		{"", ""},
	}
	for _, c := range cases {
		if got := m.String(c.in); got != c.want {
			t.Errorf("String(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if New(nil).String("hunter22") != "hunter22" || !New([]string{"", "ab"}).Empty() {
		t.Error("an empty masker must change nothing")
	}
	var nilMasker *Masker
	if nilMasker.String("x") != "x" || !nilMasker.Empty() {
		t.Error("a nil masker must change nothing")
	}
}

func TestWriterAcrossWrites(t *testing.T) {
	m := New([]string{"hunter22", "s3cr3t", "s3cr3t-longer"})
	in := "line one hunter22\npass: s3cr3t-longer, short s3cr3t. end hunt"
	want := m.String(in)
	for split := 0; split <= len(in); split++ {
		var out bytes.Buffer
		w := m.Writer(&out)
		for _, part := range []string{in[:split], in[split:]} {
			if n, err := w.Write([]byte(part)); err != nil || n != len(part) {
				t.Fatalf("Write = %d, %v", n, err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if out.String() != want {
			t.Fatalf("split at %d: got %q, want %q", split, out.String(), want)
		}
	}
}

func TestWriterByteAtATime(t *testing.T) {
	m := New([]string{"hunter22"})
	var out bytes.Buffer
	w := m.Writer(&out)
	in := "a hunter2 is not hunter22 but hunter"
	for i := range len(in) {
		w.Write([]byte{in[i]})
	}
	// Everything that cannot begin a secret is written at once.
	if strings.Contains(out.String(), "hunter22") || !strings.HasPrefix(out.String(), "a hunter2 is not ******** but ") {
		t.Fatalf("before Flush: %q", out.String())
	}
	w.Flush()
	if out.String() != "a hunter2 is not ******** but hunter" {
		t.Fatalf("after Flush: %q", out.String())
	}
}

func TestInPlace(t *testing.T) {
	m := New([]string{"hunter22"})
	stored := []byte("log: hunt")
	chunk := []byte("er22 and hunter22 again hun")
	m.InPlace(stored, chunk)
	if string(chunk) != "**** and ******** again hun" {
		t.Fatalf("InPlace = %q", chunk)
	}
	if string(stored) != "log: hunt" {
		t.Fatal("InPlace changed the prefix")
	}
}

// FuzzMask checks the invariants: no secret survives masking, the streaming
// Writer agrees with String wherever the stream is split, and InPlace keeps
// lengths and leaves no secret in the bytes it may change.
func FuzzMask(f *testing.F) {
	f.Add("hunter22", "pw=hunter22\n", 3)
	f.Add("abcd", "abcabcdabcd", 5)
	f.Add("aaaa", "aaaaaaaaa", 2)
	f.Fuzz(func(t *testing.T, secret, text string, split int) {
		if strings.Contains(secret, "*") || len(secret) < MinLen {
			return
		}
		m := New([]string{secret, secret[:len(secret)-1] + "x"})
		got := m.String(text)
		if strings.Contains(got, secret) {
			t.Fatalf("String(%q) = %q still holds %q", text, got, secret)
		}
		if split < 0 {
			split = -split
		}
		split %= len(text) + 1
		var out bytes.Buffer
		w := m.Writer(&out)
		w.Write([]byte(text[:split]))
		w.Write([]byte(text[split:]))
		w.Flush()
		if out.String() != got {
			t.Fatalf("Writer split at %d = %q, String = %q", split, out.String(), got)
		}
		prefix, b := []byte(text[:split]), []byte(text[split:])
		m.InPlace(prefix, b)
		if len(b) != len(text)-split {
			t.Fatal("InPlace changed the length")
		}
		if joined := string(prefix) + string(b); strings.Contains(joined[split:], secret) {
			t.Fatalf("InPlace left %q in %q", secret, b)
		}
	})
}
