package pki

import (
	"bytes"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLoadOrCreateServerCert(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	otherCA := newTestCA(t)
	initial := []string{"127.0.0.1", "tentacle.example.com"}
	// replace writes a certificate made by issue over the one in dir.
	replace := func(issue func() (certPEM, keyPEM []byte)) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			certPEM, keyPEM := issue()
			write(t, dir, "server.crt", certPEM)
			write(t, dir, "server.key", keyPEM)
		}
	}
	hostsOf := func(names ...string) serverHosts {
		h, err := parseHosts(names)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	tests := []struct {
		name     string
		damage   func(t *testing.T, dir string) // nil: leave the first certificate alone
		hosts    []string
		reissued bool
	}{
		{"same hosts", nil, initial, false},
		{"fewer hosts", nil, []string{"tentacle.example.com"}, false},
		{"same hosts in another order and case", nil, []string{"TENTACLE.example.com.", "127.0.0.1", "127.0.0.1"}, false},
		{"name added", nil, append([]string{"other.example.com"}, initial...), true},
		{"IP added", nil, append([]string{"::1"}, initial...), true},
		{"files removed", func(t *testing.T, dir string) { remove(t, dir, "server.crt"); remove(t, dir, "server.key") }, initial, true},
		{"key removed", func(t *testing.T, dir string) { remove(t, dir, "server.key") }, initial, true},
		{"certificate corrupt", func(t *testing.T, dir string) { write(t, dir, "server.crt", []byte("junk")) }, initial, true},
		{"key of another certificate", func(t *testing.T, dir string) {
			_, _, keyPEM, err := issueServerCert(ca, hostsOf(initial...), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			write(t, dir, "server.key", keyPEM)
		}, initial, true},
		{"signed by another CA", replace(func() ([]byte, []byte) {
			_, certPEM, keyPEM, err := issueServerCert(otherCA, hostsOf(initial...), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return certPEM, keyPEM
		}), initial, true},
		{"expires within 30 days", replace(func() ([]byte, []byte) {
			_, certPEM, keyPEM, err := issueServerCert(ca, hostsOf(initial...), time.Now().Add(-340*24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			return certPEM, keyPEM
		}), initial, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			first, err := LoadOrCreateServerCert(dir, ca, initial)
			if err != nil {
				t.Fatal(err)
			}
			if tt.damage != nil {
				tt.damage(t, dir)
			}
			got, err := LoadOrCreateServerCert(dir, ca, tt.hosts)
			if err != nil {
				t.Fatal(err)
			}
			if reissued := !bytes.Equal(got.Leaf.Raw, first.Leaf.Raw); reissued != tt.reissued {
				t.Errorf("reissued = %v, want %v", reissued, tt.reissued)
			}
			checkServerChain(t, got.Certificate, ca, tt.hosts)
			wantMode(t, filepath.Join(dir, "server.key"), 0o600)

			// What was returned is what is on disk: a restart keeps it.
			again, err := LoadOrCreateServerCert(dir, ca, tt.hosts)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Leaf.Raw, got.Leaf.Raw) {
				t.Error("a second load reissued the certificate")
			}
		})
	}
}

// checkServerChain checks a chain as an enrolling agent will: leaf first,
// then the CA, and the leaf valid for every host.
func checkServerChain(t *testing.T, chain [][]byte, ca *CA, hosts []string) {
	t.Helper()
	if len(chain) != 2 || !bytes.Equal(chain[1], ca.Cert.Raw) {
		t.Fatalf("chain has %d certificates, want leaf and CA", len(chain))
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		t.Fatal(err)
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life < 364*24*time.Hour || life > 366*24*time.Hour {
		t.Errorf("server certificate valid for %v, want a year", life)
	}
	for _, h := range hosts {
		if err := leaf.VerifyHostname(h); err != nil {
			t.Error(err)
		}
	}
	if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("ExtKeyUsage = %v, want server auth only", leaf.ExtKeyUsage)
	}
}

func TestLoadOrCreateServerCertBadHosts(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	tests := []struct {
		name  string
		hosts []string
		want  string
	}{
		{"none", nil, "no hosts: name at least one DNS name or IP address that agents dial"},
		{"blank", []string{""}, `host "" is neither an IP address nor a DNS name`},
		{"with port", []string{"tentacle.example.com:8443"}, `host "tentacle.example.com:8443" is neither an IP address nor a DNS name`},
		{"URL", []string{"https://tentacle.example.com"}, `host "https://tentacle.example.com" is neither an IP address nor a DNS name`},
		{"bracketed IPv6", []string{"[::1]"}, `host "[::1]" is neither an IP address nor a DNS name`},
		{"space", []string{"tentacle example"}, `host "tentacle example" is neither an IP address nor a DNS name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			_, err := LoadOrCreateServerCert(dir, ca, tt.hosts)
			if got := errString(err); got != tt.want {
				t.Errorf("error %q, want %q", got, tt.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "server.crt")); err == nil {
				t.Error("a certificate was written anyway")
			}
		})
	}
}

func TestParseHostsWildcardAndIPv6(t *testing.T) {
	t.Parallel()
	h, err := parseHosts([]string{"*.tentacle.example.com", "fe80::1", "10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.dns) != 1 || h.dns[0] != "*.tentacle.example.com" {
		t.Errorf("dns = %q", h.dns)
	}
	if len(h.ips) != 2 || !h.ips[0].Equal(net.ParseIP("fe80::1")) {
		t.Errorf("ips = %v", h.ips)
	}
}
