package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseStatusKiB(t *testing.T) {
	status := "Name:\ttentacle-server\nVmPeak:\t 1234567 kB\nVmRSS:\t   51200 kB\nThreads:\t9\n"
	if got, err := parseStatusKiB(status, "VmRSS"); err != nil || got != 51200 {
		t.Fatalf("VmRSS = %d, %v; want 51200", got, err)
	}
	if _, err := parseStatusKiB(status, "VmSwap"); err == nil {
		t.Fatal("a missing field: no error")
	}
	if _, err := parseStatusKiB("VmRSS:\t12 MB\n", "VmRSS"); err == nil {
		t.Fatal("a unit other than kB: no error")
	}
}

func TestParseStatTicks(t *testing.T) {
	// A command name with spaces and a ')' must not shift the fields.
	stat := "4242 (tentacle (x) srv) S 1 4242 4242 0 -1 4194560 900 0 0 0 150 75 0 0 20 0 9 0 12345 1000000 5000 18446744073709551615"
	if got, err := parseStatTicks(stat); err != nil || got != 225 {
		t.Fatalf("ticks = %d, %v; want 150+75", got, err)
	}
	if _, err := parseStatTicks("4242 (short) S 1 2"); err == nil {
		t.Fatal("a short line: no error")
	}
	if _, err := parseStatTicks("no parenthesis"); err == nil {
		t.Fatal("no command: no error")
	}
}

func TestOwnProcessFigures(t *testing.T) {
	rss, err := rssKiB(os.Getpid())
	if err != nil || rss <= 0 {
		t.Fatalf("rssKiB(self) = %d, %v", rss, err)
	}
	if _, err := cpuTime(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}

func TestPercentile(t *testing.T) {
	var s []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0.1, time.Millisecond}} {
		if got := percentile(s, c.p); got != c.want {
			t.Errorf("p%v = %s, want %s", c.p, got, c.want)
		}
	}
	if s[0] != 100*time.Millisecond {
		t.Error("percentile sorted its argument")
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("p50 of nothing = %s", got)
	}
	if got := percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("p99 of one = %s", got)
	}
}

func TestParseMetric(t *testing.T) {
	page := "# HELP tentacle_server_sessions Agent sessions connected now.\n# TYPE tentacle_server_sessions gauge\ntentacle_server_sessions_x 3\ntentacle_server_sessions 4999\n"
	if v, err := parseMetric(strings.NewReader(page), "tentacle_server_sessions"); err != nil || v != 4999 {
		t.Fatalf("= %v, %v", v, err)
	}
	if _, err := parseMetric(strings.NewReader(page), "nope"); err == nil {
		t.Fatal("a missing metric: no error")
	}
}
