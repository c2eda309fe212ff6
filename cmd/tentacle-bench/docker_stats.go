package main

import (
	"bytes"
	"slices"
	"strconv"
	"time"
)

// lineStamp finds testapp's stamp in one output line: the unix nanoseconds
// after "line <i> " (TESTAPP_STAMP=1), anywhere in the line so that a live
// tail's "target | " prefix does not matter.
func lineStamp(line []byte) (int64, bool) {
	i := bytes.Index(line, []byte("line "))
	if i < 0 {
		return 0, false
	}
	rest := line[i+len("line "):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	if j == 0 || j >= len(rest) || rest[j] != ' ' {
		return 0, false
	}
	rest = rest[j+1:]
	k := 0
	for k < len(rest) && rest[k] >= '0' && rest[k] <= '9' {
		k++
	}
	if k == 0 || k > 19 || (k < len(rest) && rest[k] != ' ' && rest[k] != '\n' && rest[k] != '\r') {
		return 0, false
	}
	n, err := strconv.ParseInt(string(rest[:k]), 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// median of ds (the mean of the middle two for an even count); 0 for none.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// counterSample is a counter's value at a time.
type counterSample struct {
	at    time.Time
	value float64
}

// storedRate is the rate at which a counter grew while it was growing: from
// the last sample before it first grew to the first sample at its final
// value. It returns the rate per second, the growth and the time it took.
func storedRate(samples []counterSample) (rate, growth float64, took time.Duration) {
	if len(samples) < 2 {
		return 0, 0, 0
	}
	first, last := -1, -1
	for i := 1; i < len(samples); i++ {
		if samples[i].value > samples[i-1].value {
			if first < 0 {
				first = i - 1
			}
			last = i
		}
	}
	if first < 0 {
		return 0, 0, 0
	}
	growth = samples[last].value - samples[first].value
	took = samples[last].at.Sub(samples[first].at)
	if took <= 0 {
		return 0, growth, took
	}
	return growth / took.Seconds(), growth, took
}

// metricValue reads one unlabelled (or summed over labels) counter from a
// Prometheus text exposition.
func metricValue(exposition []byte, name string) (float64, bool) {
	var sum float64
	found := false
	for _, line := range bytes.Split(exposition, []byte("\n")) {
		if len(line) == 0 || line[0] == '#' || !bytes.HasPrefix(line, []byte(name)) {
			continue
		}
		rest := line[len(name):]
		if len(rest) == 0 || (rest[0] != ' ' && rest[0] != '{') {
			continue // a longer name with this prefix
		}
		sp := bytes.LastIndexByte(rest, ' ')
		v, err := strconv.ParseFloat(string(bytes.TrimSpace(rest[sp+1:])), 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}
