package faultproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// unixEcho starts an upstream unix socket that answers every line with the
// same line.
func unixEcho(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fpt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ln, err := net.Listen("unix", filepath.Join(dir, "up.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

// ask connects to the proxy, sends a line and reads the answer within d.
func ask(t *testing.T, p *UnixProxy, d time.Duration) (string, error) {
	t.Helper()
	c, err := net.Dial("unix", p.Path())
	if err != nil {
		t.Fatalf("dial %s: %v (a stalled proxy must still accept)", p.Path(), err)
	}
	defer c.Close()
	return lineTrip(c, d)
}

func lineTrip(c net.Conn, d time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(d))
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

// TestUnixProxyStallAndHeal: forwarded, then accepted but unanswered (and
// the open connection broken), then forwarded again.
func TestUnixProxyStallAndHeal(t *testing.T) {
	t.Parallel()
	p, err := StartUnix(unixEcho(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if got := p.DockerHost(); got != "unix://"+p.Path() {
		t.Errorf("DockerHost() = %q, want unix://%s", got, p.Path())
	}
	if got, err := ask(t, p, 5*time.Second); err != nil || got != "ping\n" {
		t.Fatalf("before the stall: %q, %v; want the echo", got, err)
	}

	open, err := net.Dial("unix", p.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if _, err := lineTrip(open, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Stall()
	if got, err := lineTrip(open, 5*time.Second); err == nil {
		t.Errorf("connection open during Stall still answered %q", got)
	}
	_, err = ask(t, p, 300*time.Millisecond)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("while stalled: error %v, want a timeout (accepted, never answered)", err)
	}

	p.Heal()
	if got, err := ask(t, p, 5*time.Second); err != nil || got != "ping\n" {
		t.Fatalf("after Heal: %q, %v; want the echo", got, err)
	}
	path := p.Path()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket %s still there after Close: %v", path, err)
	}
}
