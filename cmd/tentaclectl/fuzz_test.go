package main

import (
	"testing"
	"time"
)

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{"server: h:8443\ntoken: tntadm_x\nca_file: ca.crt\n", "serverr: x\n", "", "server: [1]\n", "- a\n", "server: a\nserver: b\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Must not panic; whatever it accepts parses the same way again.
		a, err := parseConfig(data)
		if err != nil {
			return
		}
		b, err := parseConfig(data)
		if err != nil || a != b {
			t.Fatalf("parseConfig is not deterministic on %q: %+v vs %+v (%v)", data, a, b, err)
		}
	})
}

func FuzzParseSince(f *testing.F) {
	for _, s := range []string{"24h", "30m", "2026-11-26T10:00:00Z", "2026-11-26T10:00:00", "7d", "-1h", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseSince(s, now)
		if err != nil {
			return
		}
		// A duration means "that long ago": never in the future.
		if d, derr := time.ParseDuration(s); derr == nil && got.After(now) {
			t.Fatalf("--since %q (%s) gave %s, after now", s, d, got)
		}
	})
}
