package main

import (
	"testing"
	"time"
)

func TestLineStamp(t *testing.T) {
	for _, c := range []struct {
		line string
		want int64
		ok   bool
	}{
		{"line 12 1700000000123456789 xxxx\n", 1700000000123456789, true},
		{"line 1 1700000000123456789\n", 1700000000123456789, true},
		{"tbench-logs-1 | line 7 1700000000000000001 x", 1700000000000000001, true},
		{"line 5 hello\n", 0, false},       // no stamp (TESTAPP_STAMP unset)
		{"line 5 17000x000 x\n", 0, false}, // not a number
		{"tentacle: verifying: waiting 30s\n", 0, false},
		{"line  1700000000000000001 x", 0, false},   // no line number
		{"line 3 99999999999999999999 x", 0, false}, // 20 digits
		{"line 3 1700000000000000001x", 0, false},   // digits run into text
	} {
		got, ok := lineStamp([]byte(c.line))
		if got != c.want || ok != c.ok {
			t.Errorf("lineStamp(%q) = %d, %v; want %d, %v", c.line, got, ok, c.want, c.ok)
		}
	}
}

func TestMedian(t *testing.T) {
	if got := median([]time.Duration{3, 1, 2}); got != 2 {
		t.Errorf("median odd = %d", got)
	}
	in := []time.Duration{4, 1, 3, 2}
	if got := median(in); got != 2 { // (2+3)/2 in integer nanoseconds
		t.Errorf("median even = %d", got)
	}
	if in[0] != 4 {
		t.Error("median sorted its input")
	}
}

func TestStoredRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	samples := []counterSample{
		{at(0), 100}, {at(1), 100}, {at(2), 300}, {at(3), 500}, {at(4), 500}, {at(5), 500},
	}
	rate, growth, took := storedRate(samples)
	if rate != 200 || growth != 400 || took != 2*time.Second {
		t.Errorf("storedRate = %v, %v, %s; want 200, 400, 2s", rate, growth, took)
	}
	if rate, _, _ := storedRate(samples[:2]); rate != 0 {
		t.Errorf("no growth: rate %v", rate)
	}
}

func TestMetricValue(t *testing.T) {
	expo := []byte(`# HELP tentacle_server_task_log_bytes_total Bytes.
# TYPE tentacle_server_task_log_bytes_total counter
tentacle_server_task_log_bytes_total 1.5e+06
tentacle_server_task_log_bytes_total_extra 7
tentacle_server_sessions{env="a"} 2
tentacle_server_sessions{env="b"} 3
`)
	if v, ok := metricValue(expo, "tentacle_server_task_log_bytes_total"); !ok || v != 1.5e6 {
		t.Errorf("counter = %v, %v", v, ok)
	}
	if v, ok := metricValue(expo, "tentacle_server_sessions"); !ok || v != 5 {
		t.Errorf("labelled sum = %v, %v", v, ok)
	}
	if _, ok := metricValue(expo, "tentacle_server_missing"); ok {
		t.Error("a missing metric was found")
	}
}

func TestParseProc(t *testing.T) {
	status := []byte("Name:\ttentacle\nVmPeak:\t  900000 kB\nVmRSS:\t   18432 kB\nRssAnon:\t    6144 kB\nThreads:\t9\n")
	if rss, err := statusKB(status, "VmRSS"); err != nil || rss != 18432<<10 {
		t.Errorf("VmRSS = %d, %v", rss, err)
	}
	if anon, err := statusKB(status, "RssAnon"); err != nil || anon != 6144<<10 {
		t.Errorf("RssAnon = %d, %v", anon, err)
	}
	if _, err := statusKB([]byte("Name:\tx\n"), "VmRSS"); err == nil {
		t.Error("no VmRSS: no error")
	}
	// A command name with a space and a parenthesis; utime 250, stime 50.
	stat := []byte("4242 (ten tacle)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 9 0 100 900000 4608 18446744073709551615\n")
	if cpu, err := parseStatCPU(stat); err != nil || cpu != 3*time.Second {
		t.Errorf("parseStatCPU = %s, %v; want 3s", cpu, err)
	}
	a := procSample{at: time.Unix(0, 0), cpu: time.Second}
	b := procSample{at: time.Unix(10, 0), cpu: 2 * time.Second}
	if got := cpuPercent(a, b); got != 10 {
		t.Errorf("cpuPercent = %v, want 10", got)
	}
}
