package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

const (
	serverCertFile     = "server.crt"
	serverKeyFile      = "server.key"
	serverCommonName   = "Tentacle server"
	serverCertValidity = 365 * 24 * time.Hour
	// serverCertRenewBefore leaves a month in which any restart picks up a
	// fresh certificate before agents start refusing the old one.
	serverCertRenewBefore = 30 * 24 * time.Hour
)

// serverHosts is what a server certificate must name: hosts split into the
// two kinds of subject alternative name.
type serverHosts struct {
	dns []string
	ips []net.IP
}

// LoadOrCreateServerCert returns the server's serving certificate from
// dir/server.crt and dir/server.key, issuing a new one from ca (one year,
// every host as a SAN) when the files are missing or unreadable, when the
// certificate is not signed by ca, misses one of hosts, or expires within 30
// days. The chain includes the CA certificate: an enrolling agent has only
// the CA's hash and pins the CA it finds in the chain.
func LoadOrCreateServerCert(dir string, ca *CA, hosts []string) (tls.Certificate, error) {
	want, err := parseHosts(hosts)
	if err != nil {
		return tls.Certificate{}, err
	}
	certPath := filepath.Join(dir, serverCertFile)
	keyPath := filepath.Join(dir, serverKeyFile)
	now := time.Now()

	leaf, key, err := loadServerCert(certPath, keyPath)
	if err == nil {
		err = checkServerCert(leaf, ca, want, now)
	}
	if err == nil {
		return tls.Certificate{Certificate: [][]byte{leaf.Raw, ca.Cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
	}
	// A file we may not read is the operator's to fix; anything else (a
	// missing, corrupt or stale certificate) is fixed by issuing a new one,
	// since agents trust the CA, not this certificate.
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) && !errors.Is(err, fs.ErrNotExist) {
		return tls.Certificate{}, err
	}

	cert, certPEM, keyPEM, err := issueServerCert(ca, want, now)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, err
	}
	// Key first: a crash between the writes leaves a pair that does not
	// match, which the next start detects and reissues.
	if err := WriteFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := WriteFileAtomic(certPath, certPEM, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return cert, nil
}

// parseHosts sorts hosts into IP and DNS SANs. It rejects what cannot be a
// SAN (a port, a URL, a blank) here, with the host named, rather than let it
// become a certificate no agent can verify.
func parseHosts(hosts []string) (serverHosts, error) {
	var h serverHosts
	if len(hosts) == 0 {
		return h, errors.New("no hosts: name at least one DNS name or IP address that agents dial")
	}
	for _, host := range hosts {
		if ip := net.ParseIP(host); ip != nil {
			if !slices.ContainsFunc(h.ips, ip.Equal) {
				h.ips = append(h.ips, ip)
			}
			continue
		}
		if !validDNSName(host) {
			return serverHosts{}, fmt.Errorf("host %q is neither an IP address nor a DNS name", host)
		}
		name := strings.ToLower(strings.TrimSuffix(host, "."))
		if !slices.Contains(h.dns, name) {
			h.dns = append(h.dns, name)
		}
	}
	return h, nil
}

// validDNSName accepts host names as certificates carry them: dot-separated
// labels of letters, digits, '-' and '_', the first label possibly "*".
func validDNSName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for i, label := range strings.Split(s, ".") {
		if label == "*" && i == 0 {
			continue
		}
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range []byte(label) {
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
			if !ok {
				return false
			}
		}
	}
	return true
}

func loadServerCert(certPath, keyPath string) (*x509.Certificate, any, error) {
	leaf, err := readCertFile(certPath)
	if err != nil {
		return nil, nil, err
	}
	key, err := readKeyFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	if !publicKeyMatches(leaf.PublicKey, key) {
		return nil, nil, fmt.Errorf("%s is not the key of %s", keyPath, certPath)
	}
	return leaf, key, nil
}

// checkServerCert says why leaf must be reissued, or nil when it may stay.
func checkServerCert(leaf *x509.Certificate, ca *CA, want serverHosts, now time.Time) error {
	if !bytes.Equal(leaf.RawIssuer, ca.Cert.RawSubject) || leaf.CheckSignatureFrom(ca.Cert) != nil {
		return errors.New("not signed by the CA")
	}
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		return errors.New("not for server authentication")
	}
	if now.Before(leaf.NotBefore) || leaf.NotAfter.Sub(now) < serverCertRenewBefore {
		return fmt.Errorf("valid from %s to %s", leaf.NotBefore, leaf.NotAfter)
	}
	for _, ip := range want.ips {
		if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
			return fmt.Errorf("does not name %s", ip)
		}
	}
	for _, name := range want.dns {
		if !slices.ContainsFunc(leaf.DNSNames, func(n string) bool { return strings.EqualFold(n, name) }) {
			return fmt.Errorf("does not name %s", name)
		}
	}
	return nil
}

func issueServerCert(ca *CA, hosts serverHosts, now time.Time) (cert tls.Certificate, certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("generate server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: serverCommonName},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter(ca, now.Add(serverCertValidity)),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              hosts.dns,
		IPAddresses:           hosts.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("sign server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	cert = tls.Certificate{Certificate: [][]byte{der, ca.Cert.Raw}, PrivateKey: key, Leaf: leaf}
	return cert, encodePEM("CERTIFICATE", der), encodePEM("PRIVATE KEY", keyDER), nil
}

// notAfter clamps an expiry to the CA's own: past it no chain verifies, so
// a later date would only misstate how long the certificate is good for.
func notAfter(ca *CA, t time.Time) time.Time {
	if t.After(ca.Cert.NotAfter) {
		return ca.Cert.NotAfter
	}
	return t
}
