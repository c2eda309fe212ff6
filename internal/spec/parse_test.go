package spec

import (
	"strings"
	"testing"
)

func TestParsePort(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Port
	}{
		{"80", Port{ContainerPort: 80, Protocol: "tcp"}},
		{"53/udp", Port{ContainerPort: 53, Protocol: "udp"}},
		{"8080:80", Port{ContainerPort: 80, HostPort: 8080, Protocol: "tcp"}},
		{"0:80", Port{ContainerPort: 80, Protocol: "tcp"}},
		{"8080:80/tcp", Port{ContainerPort: 80, HostPort: 8080, Protocol: "tcp"}},
		{"127.0.0.1:8080:80", Port{ContainerPort: 80, HostPort: 8080, Protocol: "tcp", HostIP: "127.0.0.1"}},
		{"127.0.0.1::80", Port{ContainerPort: 80, Protocol: "tcp", HostIP: "127.0.0.1"}},
		{"0.0.0.0:53:53/udp", Port{ContainerPort: 53, HostPort: 53, Protocol: "udp", HostIP: "0.0.0.0"}},
		{"[::1]:8080:80", Port{ContainerPort: 80, HostPort: 8080, Protocol: "tcp", HostIP: "::1"}},
		{"[::]::80/udp", Port{ContainerPort: 80, Protocol: "udp", HostIP: "::"}},
		{"65535:65535", Port{ContainerPort: 65535, HostPort: 65535, Protocol: "tcp"}},
	}
	for _, tt := range tests {
		got, err := ParsePort(tt.in)
		if err != nil {
			t.Errorf("ParsePort(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParsePort(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParsePortErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", "empty port: use [IP:]HOST:CONTAINER[/tcp|udp], e.g. 8080:80"},
		{"80:99999", "container port 99999 out of range 1-65535"},
		{"0", "container port 0 out of range 1-65535"},
		{"8080:0", "container port 0 out of range 1-65535"},
		{"99999999999:80", "host port 99999999999 out of range 1-65535 (0 picks a free port)"},
		{"70000:80", "host port 70000 out of range 1-65535 (0 picks a free port)"},
		{"http", `container port "http" is not a number`},
		{"-1", `container port "-1" is not a number`},
		{"+80", `container port "+80" is not a number`},
		{"x:80", `host port "x" is not a number`},
		{"80:", "container port is empty"},
		{":80", "host port is empty: give a port, 0 for a random one, or only the container port"},
		{"8000-8010:8000-8010", "container port 8000-8010: port ranges are not supported, publish each port on its own"},
		{"8000-8010:80", "host port 8000-8010: port ranges are not supported, publish each port on its own"},
		{"80/sctp", `protocol "sctp": use tcp or udp`},
		{"80/TCP", `protocol "TCP": use tcp or udp`},
		{"80/", `protocol "": use tcp or udp`},
		{"80/tcp/udp", `protocol "tcp/udp": use tcp or udp`},
		{"/tcp", "container port is empty"},
		{"localhost:80:80", `host IP "localhost" is not an IP address`},
		{"1.2.3:80:80", `host IP "1.2.3" is not an IP address`},
		{":80:80", "host IP is empty: leave out the IP to bind all addresses"},
		{"::1:80:80", "too many ':': use [IP:]HOST:CONTAINER[/tcp|udp], and brackets around an IPv6 address, e.g. [::1]:8080:80"},
		{"[::1:80:80", "missing ']' after IPv6 host IP"},
		{"[::1]:80", "after [::1] give HOST:CONTAINER, e.g. [::1]:8080:80"},
		{"[::1]80:80", "after [::1] give HOST:CONTAINER, e.g. [::1]:8080:80"},
		{"[fe80::1%eth0]:80:80", `host IP "fe80::1%eth0" is not an IP address`},
		{"[]:80:80", "host IP is empty: leave out the IP to bind all addresses"},
	}
	for _, tt := range tests {
		_, err := ParsePort(tt.in)
		if err == nil {
			t.Errorf("ParsePort(%q): no error, want %q", tt.in, tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("ParsePort(%q) error\n got: %s\nwant: %s", tt.in, err, tt.want)
		}
	}
}

func TestPortString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    Port
		want string
	}{
		{Port{ContainerPort: 80}, "80"},
		{Port{ContainerPort: 80, Protocol: "tcp"}, "80"},
		{Port{ContainerPort: 53, Protocol: "udp"}, "53/udp"},
		{Port{ContainerPort: 80, HostPort: 8080}, "8080:80"},
		{Port{ContainerPort: 80, HostIP: "127.0.0.1"}, "127.0.0.1:0:80"},
		{Port{ContainerPort: 80, HostPort: 8080, HostIP: "::1", Protocol: "udp"}, "[::1]:8080:80/udp"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestParseEnvVar(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want EnvVar
	}{
		{"A=b", EnvVar{"A", "b"}},
		{"A=", EnvVar{"A", ""}},
		{"_x1=a=b==", EnvVar{"_x1", "a=b=="}},
		{"DSN=postgres://u:p@h/db?sslmode=disable", EnvVar{"DSN", "postgres://u:p@h/db?sslmode=disable"}},
		{"A= spaced value ", EnvVar{"A", " spaced value "}},
		{"A=line1\nline2", EnvVar{"A", "line1\nline2"}},
	}
	for _, tt := range tests {
		got, err := ParseEnvVar(tt.in)
		if err != nil {
			t.Errorf("ParseEnvVar(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseEnvVar(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseEnvVarErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", "missing '=': use KEY=VALUE (KEY= for an empty value)"},
		{"PATH", "missing '=': use KEY=VALUE (KEY= for an empty value)"},
		{"=x", `invalid variable name "": use letters, digits and _, not starting with a digit`},
		{"1A=x", `invalid variable name "1A": use letters, digits and _, not starting with a digit`},
		{"MY-VAR=x", `invalid variable name "MY-VAR": use letters, digits and _, not starting with a digit`},
		{" A=x", `invalid variable name " A": use letters, digits and _, not starting with a digit`},
		{"A=x\x00y", `value of "A" contains a NUL byte`},
	}
	for _, tt := range tests {
		_, err := ParseEnvVar(tt.in)
		if err == nil {
			t.Errorf("ParseEnvVar(%q): no error, want %q", tt.in, tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("ParseEnvVar(%q) error\n got: %s\nwant: %s", tt.in, err, tt.want)
		}
	}
}

// The fuzz targets check what the server and agent rely on: whatever a parser
// accepts passes RunSpec.Validate and survives a round trip through String.

func FuzzParsePort(f *testing.F) {
	for _, s := range []string{"80", "8080:80", "127.0.0.1:8080:80/udp", "[::1]::80", "0:1", "1-2:3", "a:b:c:d", "[", "80/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePort(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("ParsePort(%q): empty error", s)
			}
			return
		}
		if err := (RunSpec{Ports: []Port{p}}).Validate(); err != nil {
			t.Fatalf("ParsePort(%q) = %+v, which Validate rejects: %v", s, p, err)
		}
		again, err := ParsePort(p.String())
		if err != nil {
			t.Fatalf("ParsePort(%q) = %+v, String %q does not parse: %v", s, p, p.String(), err)
		}
		if again != p {
			t.Fatalf("round trip of %q: %+v became %+v", s, p, again)
		}
	})
}

func FuzzParseEnvVar(f *testing.F) {
	for _, s := range []string{"A=b", "A=", "=", "A==", "1=2", "A=\x00", "a_b=c=d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseEnvVar(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("ParseEnvVar(%q): empty error", s)
			}
			return
		}
		if e.String() != s {
			t.Fatalf("ParseEnvVar(%q) = %+v, String gives %q", s, e, e.String())
		}
		if err := (RunSpec{Env: []EnvVar{e}}).Validate(); err != nil {
			t.Fatalf("ParseEnvVar(%q) = %+v, which Validate rejects: %v", s, e, err)
		}
	})
}

func FuzzParseRepository(f *testing.F) {
	for _, s := range []string{"nginx", "team/web", "registry.example.com:5000/team/web", "localhost/a", "docker.io/library/nginx",
		"1.2.3.4:5000/x", "web:1.0", "web@sha256:00", "[::1]:5000/x", "a..b/c", "host:/x", "A/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRepository(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("ParseRepository(%q): empty error", s)
			}
			return
		}
		if r.Registry == "" || r.Path == "" {
			t.Fatalf("ParseRepository(%q) = %+v: empty registry or path", s, r)
		}
		if strings.ContainsAny(r.Path, ":@") || strings.ContainsAny(s, "@ \t\n") {
			t.Fatalf("ParseRepository(%q) = %+v: accepted a tag, digest or space", s, r)
		}
		if len(r.String()) > 255 {
			t.Fatalf("ParseRepository(%q) accepted a canonical name of %d bytes", s, len(r.String()))
		}
		again, err := ParseRepository(r.String())
		if err != nil {
			t.Fatalf("ParseRepository(%q) = %+v, String %q does not parse: %v", s, r, r.String(), err)
		}
		if again != r {
			t.Fatalf("round trip of %q: %+v became %+v", s, r, again)
		}
	})
}
