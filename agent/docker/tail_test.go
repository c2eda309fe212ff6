package docker

import (
	"fmt"
	"strings"
	"testing"
)

func TestLogTail(t *testing.T) {
	t.Parallel()
	tail := newLogTail(3, 8)
	for i := 1; i <= 5; i++ {
		fmt.Fprintf(tail, "line %d\n", i)
	}
	// Split writes, a CRLF line, an over-long line and no final newline.
	tail.Write([]byte("abc"))
	tail.Write([]byte("def\r\n0123456789abcdef\nlast"))
	want := "last 3 lines of output of container web:\nabcdef\n01234567 …\nlast"
	if got := tail.describe("web"); got != want {
		t.Errorf("describe =\n%q\nwant\n%q", got, want)
	}
	if got := newLogTail(3, 8).describe("web"); got != "container web printed nothing" {
		t.Errorf("describe with no output = %q", got)
	}
	one := newLogTail(3, 8)
	one.Write([]byte("only\n"))
	if got := one.describe("web"); got != "last line of output of container web:\nonly" {
		t.Errorf("describe one line = %q", got)
	}
	big := newLogTail(tailLines, tailLineBytes)
	big.Write([]byte(strings.Repeat("x", 1<<20) + "\n"))
	if n := len(big.describe("web")); n > tailLines*(tailLineBytes+8)+100 {
		t.Errorf("tail of a 1 MiB line is %d bytes", n)
	}
}
