package agent

import (
	"net"
	"strconv"
	"testing"
)

func TestMetricsAddrRejectionsNameTheKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ yaml, want string }{
		{"metrics_addr: 9480\n", `line 1: metrics_addr: "9480" must be HOST:PORT or :PORT`},
		{"server: h:1\nmetrics_addr: http://0.0.0.0:9480\n", `line 2: metrics_addr: "http://0.0.0.0:9480" must be HOST:PORT or :PORT, without a scheme`},
		{"metrics_addr: 127.0.0.1:0\n", `line 1: metrics_addr: "127.0.0.1:0" must be HOST:PORT or :PORT with a port from 1 to 65535`},
		{"metrics_addr: [\":9480\"]\n", `line 1: metrics_addr: want a string, got a list`},
	} {
		if _, err := ParseConfig([]byte(tc.yaml)); err == nil || err.Error() != tc.want {
			t.Errorf("ParseConfig(%q): %v\nwant %s", tc.yaml, err, tc.want)
		}
	}
	_, err := ApplyEnv(Config{}, envOf(map[string]string{"TENTACLE_METRICS_ADDR": "localhost"}))
	if want := `TENTACLE_METRICS_ADDR: "localhost" must be HOST:PORT or :PORT`; err == nil || err.Error() != want {
		t.Errorf("ApplyEnv: %v\nwant %s", err, want)
	}
}

func TestMetricsAddrAccepted(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{":9480", "127.0.0.1:9480", "[::1]:9480", "agent.example.com:9480"} {
		cfg, err := ParseConfig([]byte("metrics_addr: \"" + addr + "\"\n"))
		if err != nil || cfg.MetricsAddr != addr {
			t.Errorf("metrics_addr %q: %+v, %v", addr, cfg, err)
		}
	}
}

func FuzzCheckMetricsAddr(f *testing.F) {
	for _, s := range []string{"", ":9480", "127.0.0.1:9480", "[::1]:1", "h:65536", "tcp://h:1", "h", "a b:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if CheckMetricsAddr(s) != "" || s == "" {
			return
		}
		// What is accepted must be something net.Listen can be given.
		_, port, err := net.SplitHostPort(s)
		if err != nil {
			t.Fatalf("%q accepted: %v", s, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			t.Fatalf("%q accepted with port %q", s, port)
		}
	})
}
