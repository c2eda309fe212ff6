package spec

import (
	"errors"
	"fmt"
	"math"
	"net"
	"regexp"
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

// ParseVolume parses SRC:DST[:ro] (or :rw). SRC without '/' names a volume,
// an absolute SRC is a host path to bind; DST is absolute in the container.
// Paths containing ':' cannot be written this way.
func ParseVolume(s string) (Volume, error) {
	parts := strings.Split(s, ":")
	var v Volume
	switch len(parts) {
	case 2:
	case 3:
		switch parts[2] {
		case "ro":
			v.ReadOnly = true
		case "rw":
		default:
			return Volume{}, fmt.Errorf("mode %q: use ro or rw", parts[2])
		}
	default:
		return Volume{}, fmt.Errorf("use SRC:DST[:ro], SRC a volume name or an absolute host path, e.g. data:/var/lib/app or /srv/conf:/etc/app:ro")
	}
	v.Source, v.Target = parts[0], parts[1]
	if err := (RunSpec{Volumes: []Volume{v}}).Validate(); err != nil {
		return Volume{}, errors.New(strings.TrimPrefix(err.Error(), "volumes[0]: "))
	}
	return v, nil
}

// ParseNetwork parses NAME[:ALIAS[,ALIAS...]].
func ParseNetwork(s string) (Network, error) {
	name, aliases, hasAliases := strings.Cut(s, ":")
	n := Network{Name: name}
	if hasAliases {
		if aliases == "" {
			return Network{}, fmt.Errorf("no alias after ':': use NAME or NAME:ALIAS[,ALIAS...]")
		}
		n.Aliases = strings.Split(aliases, ",")
	}
	if err := (RunSpec{Networks: []Network{n}}).Validate(); err != nil {
		msg := strings.TrimPrefix(err.Error(), "networks[0]: ")
		return Network{}, errors.New(strings.ReplaceAll(msg, "networks[0].", ""))
	}
	return n, nil
}

// ParseKeyValue parses KEY=VALUE for labels and log options; the value may
// be empty and contain '='.
func ParseKeyValue(s string) (key, value string, err error) {
	key, value, ok := strings.Cut(s, "=")
	if !ok || key == "" {
		return "", "", fmt.Errorf("use KEY=VALUE (KEY= for an empty value)")
	}
	if strings.ContainsRune(s, 0) {
		return "", "", fmt.Errorf("contains a NUL byte")
	}
	return key, value, nil
}

// ParseExtraHost parses NAME:IP, as docker's --add-host writes it; IPv6
// addresses need no brackets (db:::1), though they are accepted.
func ParseExtraHost(s string) (ExtraHost, error) {
	name, ip, ok := strings.Cut(s, ":")
	if !ok {
		return ExtraHost{}, fmt.Errorf("missing ':': use NAME:IP, e.g. db:10.0.0.5")
	}
	if strings.HasPrefix(ip, "[") && strings.HasSuffix(ip, "]") {
		ip = ip[1 : len(ip)-1]
	}
	h := ExtraHost{Name: name, IP: ip}
	if err := (RunSpec{ExtraHosts: []ExtraHost{h}}).Validate(); err != nil {
		return ExtraHost{}, errors.New(strings.ReplaceAll(err.Error(), "extra_hosts[0]: ", ""))
	}
	return h, nil
}

var memoryRE = regexp.MustCompile(`^([0-9]+)(\.[0-9]+)?([bkmgt]?)(ib|b)?$`)

// ParseMemory parses a memory size as docker's --memory does: a number with
// an optional binary unit b, k, m, g or t (256m, 1.5g, 512MiB). 0 means
// no limit.
func ParseMemory(s string) (int64, error) {
	m := memoryRE.FindStringSubmatch(strings.ToLower(s))
	if m == nil || (m[3] == "b" && m[4] != "") {
		return 0, fmt.Errorf("%q is not a size: use a number with b, k, m or g, e.g. 256m", s)
	}
	unit := map[string]float64{"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[m[3]]
	f, err := strconv.ParseFloat(m[1]+m[2], 64)
	if err != nil || f*unit >= math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	n := int64(f * unit)
	if n != 0 && n < MinMemoryBytes {
		return 0, fmt.Errorf("%q is below Docker's minimum of 6MiB: use e.g. 256m, or 0 for no limit", s)
	}
	return n, nil
}

// ParseCPUs parses a number of CPUs such as 0.5 or 2 into billionths of a
// CPU, exactly (no floating point). 0 means no limit.
func ParseCPUs(s string) (int64, error) {
	whole, frac, _ := strings.Cut(s, ".")
	if (whole == "" && frac == "") || (whole != "" && !isDigits(whole)) || (frac != "" && !isDigits(frac)) || len(frac) > 9 || len(whole) > 6 {
		return 0, fmt.Errorf("%q is not a number of CPUs: use e.g. 0.5 or 2, at most 9 decimals", s)
	}
	var n int64
	if whole != "" {
		w, _ := strconv.ParseInt(whole, 10, 64)
		n = w * 1e9
	}
	if frac != "" {
		f, _ := strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
		n += f
	}
	if n != 0 && n < MinNanoCPUs {
		return 0, fmt.Errorf("%q is below Docker's minimum of 0.01 CPU: use e.g. 0.5, or 0 for no limit", s)
	}
	return n, nil
}
