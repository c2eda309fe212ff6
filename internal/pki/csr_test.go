package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tamperedCSR returns a CSR whose signed content was changed after signing.
func tamperedCSR(t *testing.T) []byte {
	t.Helper()
	_, csrPEM, err := NewKeyAndCSR("agent-host")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(csrPEM)
	der := bytes.Replace(block.Bytes, []byte("agent-host"), []byte("agent-hosx"), 1)
	return encodePEM("CERTIFICATE REQUEST", der)
}

func TestSignCSR(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	_, goCSR, err := NewKeyAndCSR("whatever-the-agent-says")
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		csr  []byte
	}{
		{"NewKeyAndCSR", goCSR},
		{"ECDSA P-384", csrFor(t, p384)},
		{"Ed25519", csrFor(t, edKey)},
		{"openssl P-256 asking for SANs", readTestdata(t, "openssl-p256.csr")},
		{"openssl Ed25519", readTestdata(t, "openssl-ed25519.csr")},
		{"openssl RSA 2048", readTestdata(t, "openssl-rsa2048.csr")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const validity = 90 * 24 * time.Hour
			before := time.Now()
			certPEM, cert, err := ca.SignCSR(tt.csr, "target-0192", validity)
			if err != nil {
				t.Fatal(err)
			}
			block, _ := pem.Decode(certPEM)
			if block == nil || block.Type != "CERTIFICATE" || !bytes.Equal(block.Bytes, cert.Raw) {
				t.Fatal("certPEM is not the returned certificate")
			}
			// Nothing the CSR asked for reaches the certificate.
			if cert.Subject.String() != "CN=target-0192" || len(cert.DNSNames)+len(cert.IPAddresses)+len(cert.EmailAddresses)+len(cert.URIs) != 0 {
				t.Errorf("subject %q, SANs %v %v", cert.Subject, cert.DNSNames, cert.IPAddresses)
			}
			if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || cert.IsCA {
				t.Errorf("ExtKeyUsage %v, IsCA %v; want client auth only", cert.ExtKeyUsage, cert.IsCA)
			}
			if bits := cert.SerialNumber.BitLen(); bits > 128 || bits < 64 {
				t.Errorf("serial is %d bits, want a random 128-bit number", bits)
			}
			if d := before.Add(-5 * time.Minute).Sub(cert.NotBefore); d < -time.Second || d > time.Second {
				t.Errorf("NotBefore = %v, want five minutes before now", cert.NotBefore)
			}
			if d := cert.NotAfter.Sub(before.Add(validity)); d < -time.Second || d > time.Minute {
				t.Errorf("NotAfter = %v, want now + %v", cert.NotAfter, validity)
			}
			roots := x509.NewCertPool()
			roots.AddCert(ca.Cert)
			if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Error(err)
			}
		})
	}
}

func csrFor(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return encodePEM("CERTIFICATE REQUEST", der)
}

func TestSignCSRRejects(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	_, goodCSR, err := NewKeyAndCSR("agent")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		csr      []byte
		cn       string
		validity time.Duration
		want     string
	}{
		{"empty", nil, "t", time.Hour, "certificate request: not PEM"},
		{"DER instead of PEM", func() []byte { b, _ := pem.Decode(goodCSR); return b.Bytes }(), "t", time.Hour,
			"certificate request: not PEM"},
		{"certificate", ca.CertPEM, "t", time.Hour,
			`certificate request: PEM block is "CERTIFICATE", want "CERTIFICATE REQUEST"`},
		{"two requests", append(append([]byte{}, goodCSR...), goodCSR...), "t", time.Hour,
			"certificate request: data after the PEM block"},
		{"garbage DER", []byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"), "t", time.Hour,
			"certificate request: malformed DER"},
		{"too large", bytes.Repeat([]byte{' '}, 64<<10+1), "t", time.Hour,
			"certificate request: 65537 bytes, want at most 65536"},
		{"bad signature", tamperedCSR(t), "t", time.Hour, "certificate request: signature invalid"},
		{"SHA-1 signature", readTestdata(t, "openssl-rsa2048-sha1.csr"), "t", time.Hour,
			"certificate request: signature algorithm SHA1-RSA is not accepted"},
		{"RSA 1024", readTestdata(t, "openssl-rsa1024.csr"), "t", time.Hour,
			"certificate request: RSA key is 1024 bits, want at least 2048"},
		{"ECDSA P-521", readTestdata(t, "openssl-p521.csr"), "t", time.Hour,
			"certificate request: ECDSA key on curve P-521, want P-256 or P-384"},
		{"empty common name", goodCSR, "", time.Hour, "client certificate common name is empty"},
		{"long common name", goodCSR, strings.Repeat("a", 65), time.Hour, "client certificate common name is 65 bytes, want at most 64"},
		{"no validity", goodCSR, "t", 0, "client certificate validity is 0s, want more than zero"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			certPEM, cert, err := ca.SignCSR(tt.csr, tt.cn, tt.validity)
			if got := errString(err); got != tt.want {
				t.Errorf("error %q\nwant  %q", got, tt.want)
			}
			if certPEM != nil || cert != nil {
				t.Error("a certificate came back with the error")
			}
		})
	}
}

// TestSignCSRClampsToCA: a client certificate never outlives its CA.
func TestSignCSRClampsToCA(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	_, csrPEM, err := NewKeyAndCSR("agent")
	if err != nil {
		t.Fatal(err)
	}
	_, cert, err := ca.SignCSR(csrPEM, "t", 20*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !cert.NotAfter.Equal(ca.Cert.NotAfter) {
		t.Errorf("NotAfter = %v, want the CA's %v", cert.NotAfter, ca.Cert.NotAfter)
	}
}

func TestNewKeyAndCSR(t *testing.T) {
	t.Parallel()
	keyPEM, csrPEM, err := NewKeyAndCSR("build-07")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("key PEM block %v, want PRIVATE KEY (PKCS#8)", block)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		t.Fatalf("key is %T, want ECDSA P-256", key)
	}
	csr, err := ParseCSR(csrPEM)
	if err != nil {
		t.Fatal(err)
	}
	if csr.Subject.CommonName != "build-07" || !ec.PublicKey.Equal(csr.PublicKey) {
		t.Errorf("CSR for %q and another key", csr.Subject.CommonName)
	}
}
