package main

import (
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

// rssKiB is the resident set of process pid (VmRSS of /proc/PID/status).
func rssKiB(pid int) (int64, error) {
	p, err := sampleProc(pid)
	return p.rss >> 10, err
}

// cpuPercentOver measures process pid's CPU use over window, in percent of
// one core.
func cpuPercentOver(pid int, window time.Duration) (float64, error) {
	a, err := sampleProc(pid)
	if err != nil {
		return 0, err
	}
	time.Sleep(window)
	b, err := sampleProc(pid)
	if err != nil {
		return 0, err
	}
	return cpuPercent(a, b), nil
}

// percentile is the p-th percentile (0 < p ≤ 100) of samples by the
// nearest-rank method: the smallest sample with at least p% of the
// samples at or below it. It is 0 for no samples.
func percentile(samples []time.Duration, p float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// loadAverage is "load average 1.23 0.98 0.80" from /proc/loadavg: every
// figure notes it, since the machine may be shared.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "load average unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "load average unknown"
	}
	return "load average " + strings.Join(f[:3], " ")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
