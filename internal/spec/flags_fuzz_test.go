package spec

import (
	"testing"
	"time"
)

// What a flag parser accepts must also pass the run spec's validation: the
// server validates the same spec again, and a value the CLI accepted but
// the server refused would be a confusing error at the wrong place.

func FuzzParseVolume(f *testing.F) {
	for _, s := range []string{"data:/var/lib/app", "/srv/conf:/etc/app:ro", "a:b", "::", "/:/", "data:/x:rw"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVolume(s)
		if err != nil {
			return
		}
		if err := (RunSpec{Volumes: []Volume{v}}).Validate(); err != nil {
			t.Fatalf("ParseVolume(%q) = %+v, which the spec refuses: %v", s, v, err)
		}
	})
}

func FuzzParseNetwork(f *testing.F) {
	for _, s := range []string{"backend", "backend:api,web", "host", "a:", ":a", "n:a,,b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseNetwork(s)
		if err != nil {
			return
		}
		if err := (RunSpec{Networks: []Network{n}}).Validate(); err != nil {
			t.Fatalf("ParseNetwork(%q) = %+v, which the spec refuses: %v", s, n, err)
		}
	})
}

func FuzzParseExtraHost(f *testing.F) {
	for _, s := range []string{"db:10.0.0.5", "db:::1", "x:", ":1.2.3.4", "a b:1.1.1.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseExtraHost(s)
		if err != nil {
			return
		}
		if err := (RunSpec{ExtraHosts: []ExtraHost{h}}).Validate(); err != nil {
			t.Fatalf("ParseExtraHost(%q) = %+v, which the spec refuses: %v", s, h, err)
		}
	})
}

func FuzzParseKeyValue(f *testing.F) {
	for _, s := range []string{"team=web", "k=", "=v", "a=b=c", "noequals"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, v, err := ParseKeyValue(s)
		if err != nil {
			return
		}
		if k+"="+v != s {
			t.Fatalf("ParseKeyValue(%q) = %q, %q: does not give the input back", s, k, v)
		}
	})
}

func FuzzParseMemoryAndCPUs(f *testing.F) {
	for _, s := range []string{"256m", "1g", "6m", "1.5g", "0.5", "2", "1e30g", "-1m", "0.000000001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if m, err := ParseMemory(s); err == nil {
			if err := (RunSpec{MemoryBytes: m}).Validate(); err != nil {
				t.Fatalf("ParseMemory(%q) = %d, which the spec refuses: %v", s, m, err)
			}
		}
		if c, err := ParseCPUs(s); err == nil {
			if err := (RunSpec{NanoCPUs: c}).Validate(); err != nil {
				t.Fatalf("ParseCPUs(%q) = %d, which the spec refuses: %v", s, c, err)
			}
		}
	})
}

func TestParseMemoryAndCPUsBelowDockersMinimum(t *testing.T) {
	t.Parallel()
	if _, err := ParseMemory("2"); err == nil || err.Error() != `"2" is below Docker's minimum of 6MiB: use e.g. 256m, or 0 for no limit` {
		t.Errorf("ParseMemory(2) error = %v", err)
	}
	if _, err := ParseCPUs("0.001"); err == nil || err.Error() != `"0.001" is below Docker's minimum of 0.01 CPU: use e.g. 0.5, or 0 for no limit` {
		t.Errorf("ParseCPUs(0.001) error = %v", err)
	}
	if n, err := ParseMemory("0"); err != nil || n != 0 {
		t.Errorf("ParseMemory(0) = %d, %v: 0 means no limit", n, err)
	}
}

// FuzzValidateRollout: whatever strategy, port and timings Validate
// accepts, start-first never comes with a fixed host port (the new and the
// old container would both bind it) and the health gate can always pass.
func FuzzValidateRollout(f *testing.F) {
	f.Add("start-first", "80", int64(0), int64(0))
	f.Add("start-first", "8080:80", int64(60e9), int64(10e9))
	f.Add("recreate", "127.0.0.1:53:53/udp", int64(5e9), int64(0))
	f.Add("", "0:80", int64(-1), int64(3600e9))
	f.Add("blue-green", "80/udp", int64(7200e9), int64(1))
	f.Fuzz(func(t *testing.T, strategy, port string, healthTimeout, readyAfter int64) {
		s := RunSpec{Strategy: strategy, HealthTimeout: time.Duration(healthTimeout), ReadyAfter: time.Duration(readyAfter)}
		if p, err := ParsePort(port); err == nil {
			s.Ports = []Port{p}
		}
		if s.Validate() != nil {
			return
		}
		if s.Strategy == StrategyStartFirst && len(s.Ports) > 0 && s.Ports[0].HostPort != 0 {
			t.Fatalf("start-first accepted with fixed host port %d", s.Ports[0].HostPort)
		}
		if d := s.WithDefaults(); d.HealthTimeout != 0 && d.HealthTimeout < d.ReadyAfter {
			t.Fatalf("health_timeout %s accepted below ready_after %s", d.HealthTimeout, d.ReadyAfter)
		}
	})
}
