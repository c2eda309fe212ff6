package spec

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Parsers for what users type on a command line. Their errors do not repeat
// the whole input: the caller names where it came from (`--port "80:x": …`).

// ParseEnvVar parses KEY=VALUE. Everything after the first '=' is the value,
// so values may contain '=' and may be empty.
func ParseEnvVar(s string) (EnvVar, error) {
	name, value, ok := strings.Cut(s, "=")
	if !ok {
		return EnvVar{}, fmt.Errorf("missing '=': use KEY=VALUE (KEY= for an empty value)")
	}
	if !envNameRE.MatchString(name) {
		return EnvVar{}, fmt.Errorf("invalid variable name %q: use letters, digits and _, not starting with a digit", name)
	}
	// Docker hands env to the kernel as C strings: a NUL would cut the value.
	if strings.ContainsRune(value, 0) {
		return EnvVar{}, fmt.Errorf("value of %q contains a NUL byte", name)
	}
	return EnvVar{Name: name, Value: value}, nil
}

// String gives the variable as KEY=VALUE, the form ParseEnvVar reads.
func (e EnvVar) String() string { return e.Name + "=" + e.Value }

// ParsePort parses a published port as Docker's -p writes it:
//
//	CONTAINER[/PROTO]                 a random free host port
//	HOST:CONTAINER[/PROTO]            HOST 0 also picks a random port
//	IP:HOST:CONTAINER[/PROTO]         IP:  :CONTAINER leaves HOST random
//	[IPv6]:HOST:CONTAINER[/PROTO]
//
// PROTO is tcp (the default) or udp. Port ranges are not supported: a
// PortMapping holds one port.
func ParsePort(s string) (Port, error) {
	if s == "" {
		return Port{}, fmt.Errorf("empty port: use [IP:]HOST:CONTAINER[/tcp|udp], e.g. 8080:80")
	}
	addr, proto, hasProto := strings.Cut(s, "/")
	p := Port{Protocol: "tcp"}
	if hasProto {
		if proto != "tcp" && proto != "udp" {
			return Port{}, fmt.Errorf("protocol %q: use tcp or udp", proto)
		}
		p.Protocol = proto
	}

	var parts []string
	if rest, ok := strings.CutPrefix(addr, "["); ok {
		// Brackets keep an IPv6 address's colons apart from the port separators.
		ip, after, ok := strings.Cut(rest, "]")
		if !ok {
			return Port{}, fmt.Errorf("missing ']' after IPv6 host IP")
		}
		after, ok = strings.CutPrefix(after, ":")
		if !ok || strings.Count(after, ":") != 1 {
			return Port{}, fmt.Errorf("after [%s] give HOST:CONTAINER, e.g. [::1]:8080:80", ip)
		}
		host, ctr, _ := strings.Cut(after, ":")
		parts = []string{ip, host, ctr}
	} else {
		parts = strings.Split(addr, ":")
	}

	var hostPart, ctrPart string
	switch len(parts) {
	case 1:
		ctrPart = parts[0]
	case 2:
		hostPart, ctrPart = parts[0], parts[1]
		if hostPart == "" {
			return Port{}, fmt.Errorf("host port is empty: give a port, 0 for a random one, or only the container port")
		}
	case 3:
		p.HostIP, hostPart, ctrPart = parts[0], parts[1], parts[2]
		if p.HostIP == "" {
			return Port{}, fmt.Errorf("host IP is empty: leave out the IP to bind all addresses")
		}
		if net.ParseIP(p.HostIP) == nil {
			return Port{}, fmt.Errorf("host IP %q is not an IP address", p.HostIP)
		}
	default:
		return Port{}, fmt.Errorf("too many ':': use [IP:]HOST:CONTAINER[/tcp|udp], and brackets around an IPv6 address, e.g. [::1]:8080:80")
	}

	ctr, err := parsePortNumber("container port", ctrPart, 1)
	if err != nil {
		return Port{}, err
	}
	p.ContainerPort = ctr
	if hostPart != "" {
		host, err := parsePortNumber("host port", hostPart, 0)
		if err != nil {
			return Port{}, err
		}
		p.HostPort = host
	}
	return p, nil
}

// parsePortNumber reads a decimal port in min-65535. Range errors match the
// ones RunSpec.Validate gives, so users see one wording wherever it is caught.
func parsePortNumber(what, s string, min uint64) (uint32, error) {
	if s == "" {
		return 0, fmt.Errorf("%s is empty", what)
	}
	if lo, hi, ok := strings.Cut(s, "-"); ok && isDigits(lo) && isDigits(hi) {
		return 0, fmt.Errorf("%s %s: port ranges are not supported, publish each port on its own", what, s)
	}
	if !isDigits(s) {
		return 0, fmt.Errorf("%s %q is not a number", what, s)
	}
	rangeErr := fmt.Errorf("%s %s out of range 1-65535", what, s)
	if min == 0 {
		rangeErr = fmt.Errorf("%s %s out of range 1-65535 (0 picks a free port)", what, s)
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n < min || n > 65535 {
		return 0, rangeErr
	}
	return uint32(n), nil
}

func isDigits(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }

// String gives the port in the form ParsePort reads, host IP and protocol
// included only when set, e.g. "8080:80", "127.0.0.1:0:53/udp", "[::1]:80:80".
func (p Port) String() string {
	var b strings.Builder
	switch {
	case strings.Contains(p.HostIP, ":"):
		b.WriteString("[" + p.HostIP + "]:")
	case p.HostIP != "":
		b.WriteString(p.HostIP + ":")
	}
	if p.HostIP != "" || p.HostPort != 0 {
		b.WriteString(strconv.FormatUint(uint64(p.HostPort), 10) + ":")
	}
	b.WriteString(strconv.FormatUint(uint64(p.ContainerPort), 10))
	if p.Protocol != "" && p.Protocol != "tcp" {
		b.WriteString("/" + p.Protocol)
	}
	return b.String()
}
