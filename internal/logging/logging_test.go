package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestNewRejectsBadFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Format: "xml"}, `--log-format: "xml": use console or json`},
		{Options{Level: "loud"}, `--log-level: "loud": use debug, info, warn or error`},
	} {
		if _, err := New(tc.o, nil); err == nil || err.Error() != tc.want {
			t.Errorf("New(%+v) error = %v, want %q", tc.o, err, tc.want)
		}
	}
}

func TestJSONFormatAndLevel(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log, err := New(Options{Format: "json", Level: "warn"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown")
	_ = log.Sync()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("got %d lines, want 1 (info filtered): %q", len(lines), buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil || m["msg"] != "shown" {
		t.Fatalf("line %q: %v %v", lines[0], m, err)
	}
}
