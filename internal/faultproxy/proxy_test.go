package faultproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// echo starts an upstream that answers every line with the same line.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
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

func start(t *testing.T, upstream string) *Proxy {
	t.Helper()
	p, err := Start(upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends a line and reads the answer within d.
func roundTrip(c net.Conn, line string, d time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(d))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return got[:len(got)-1], nil
}

func TestForwards(t *testing.T) {
	t.Parallel()
	p := start(t, echo(t))
	c := dial(t, p)
	if got, err := roundTrip(c, "hello", 5*time.Second); err != nil || got != "hello" {
		t.Fatalf("round trip = %q, %v; want hello", got, err)
	}
	if s := p.Stats(); s.Accepted != 1 || s.Active != 1 || s.Refused != 0 {
		t.Fatalf("stats = %+v; want 1 accepted, 1 active", s)
	}
}

func TestCutResetsAndRefusesUntilHeal(t *testing.T) {
	t.Parallel()
	p := start(t, echo(t))
	c := dial(t, p)
	if _, err := roundTrip(c, "before", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	if _, err := roundTrip(c, "after", 5*time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("open connection after Cut: err = %v; want it closed at once", err)
	}
	assertRefused(t, p)
	p.Heal()
	c3 := dial(t, p)
	if got, err := roundTrip(c3, "healed", 5*time.Second); err != nil || got != "healed" {
		t.Fatalf("after Heal: %q, %v", got, err)
	}
	waitStats(t, p, func(s Stats) bool { return s.Accepted == 2 && s.Refused == 1 && s.Active == 1 })
}

func TestStallHoldsBytesWithoutClosingAndHealDeliversThem(t *testing.T) {
	t.Parallel()
	p := start(t, echo(t))
	c := dial(t, p)
	if _, err := roundTrip(c, "before", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Stall()
	// Nothing comes back, and nothing is closed: only a timeout notices.
	if _, err := roundTrip(c, "held", 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("while stalled: err = %v; want a read timeout", err)
	}
	c2 := dial(t, p) // accepted and held, not refused
	c2.Write([]byte("queued\n"))
	waitStats(t, p, func(s Stats) bool { return s.Accepted == 2 && s.Refused == 0 })
	p.Heal()
	r := bufio.NewReader(c)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if got, err := r.ReadString('\n'); err != nil || got != "held\n" {
		t.Fatalf("after Heal, held bytes: %q, %v", got, err)
	}
	c2.SetDeadline(time.Now().Add(5 * time.Second))
	if got, err := bufio.NewReader(c2).ReadString('\n'); err != nil || got != "queued\n" {
		t.Fatalf("after Heal, connection accepted while stalled: %q, %v", got, err)
	}
}

func TestCutEndsAStall(t *testing.T) {
	t.Parallel()
	p := start(t, echo(t))
	c := dial(t, p)
	p.Stall()
	p.Cut()
	if _, err := roundTrip(c, "x", 5*time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("stalled connection after Cut: err = %v; want it closed", err)
	}
	p.Heal()
	if got, err := roundTrip(dial(t, p), "y", 5*time.Second); err != nil || got != "y" {
		t.Fatalf("after Heal: %q, %v", got, err)
	}
}

func TestUpstreamDownIsARefusal(t *testing.T) {
	t.Parallel()
	p := start(t, "127.0.0.1:1") // nothing listens on tcpmux

	assertRefused(t, p)
	waitStats(t, p, func(s Stats) bool { return s.Refused == 1 && s.Active == 0 })
	p.SetUpstream(echo(t))
	if got, err := roundTrip(dial(t, p), "z", 5*time.Second); err != nil || got != "z" {
		t.Fatalf("after SetUpstream: %q, %v", got, err)
	}
}

// TestConcurrentFaults runs traffic while faults flip, for the race
// detector, and checks the proxy still forwards and closes cleanly.
func TestConcurrentFaults(t *testing.T) {
	t.Parallel()
	p := start(t, echo(t))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.Dial("tcp", p.Addr())
				if err != nil {
					continue
				}
				roundTrip(c, "ping", 50*time.Millisecond)
				c.Close()
			}
		}()
	}
	for i := 0; i < 50; i++ {
		switch i % 3 {
		case 0:
			p.Cut()
		case 1:
			p.Stall()
		case 2:
			p.Heal()
		}
		p.Stats()
		time.Sleep(2 * time.Millisecond)
	}
	p.Heal()
	close(stop)
	wg.Wait()
	if got, err := roundTrip(dial(t, p), "last", 5*time.Second); err != nil || got != "last" {
		t.Fatalf("after the storm: %q, %v", got, err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Active != 0 {
		t.Fatalf("after Close: %d connections still active", s.Active)
	}
}

func waitStats(t *testing.T, p *Proxy, cond func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond(p.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("stats = %+v", p.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// assertRefused dials the proxy and expects the connection reset: at
// connect (the reset can beat the handshake's end) or at the first read.
func assertRefused(t *testing.T, p *Proxy) {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		return
	}
	defer c.Close()
	if _, err := roundTrip(c, "x", 5*time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection while refusing: err = %v; want it reset at once", err)
	}
}
