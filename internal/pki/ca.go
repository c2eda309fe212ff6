// Package pki is Tentacle's small certificate authority: the server's CA and
// serving certificate, agent client certificates signed from CSRs, the TLS
// configurations both ends use, and the join and admin tokens.
//
// Agent and server both import it, so it uses the standard library only and
// must not know about gRPC, the store or the network beyond *tls.Config.
package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

const (
	caCertFile   = "ca.crt"
	caKeyFile    = "ca.key"
	caCommonName = "Tentacle CA"
	caValidity   = 10 * 365 * 24 * time.Hour

	// clockSkew backdates NotBefore so a host whose clock runs a little
	// behind the server's accepts a certificate issued a moment ago.
	clockSkew = 5 * time.Minute

	hashPrefix = "sha256:"
)

// CA is the server's certificate authority: it signs the server certificate
// and every agent's client certificate.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// CertPEM is Cert in PEM, as sent to agents in EnrollResponse.ca_pem.
	CertPEM []byte
}

// LoadOrCreateCA loads dir/ca.crt and dir/ca.key, or creates both (ECDSA
// P-256, ten years) when neither exists; created reports which happened.
// When only one of the two files exists it fails rather than replace the CA:
// a new CA would cut off every enrolled agent.
func LoadOrCreateCA(dir string) (ca *CA, created bool, err error) {
	certPath := filepath.Join(dir, caCertFile)
	keyPath := filepath.Join(dir, caKeyFile)
	certExists, err := fileExists(certPath)
	if err != nil {
		return nil, false, err
	}
	keyExists, err := fileExists(keyPath)
	if err != nil {
		return nil, false, err
	}
	switch {
	case certExists && keyExists:
		ca, err := loadCA(certPath, keyPath, time.Now())
		return ca, false, err
	case certExists:
		return nil, false, fmt.Errorf("found %s but not %s: restore the key from a backup (a new CA would mean enrolling every agent again)", certPath, keyPath)
	case keyExists:
		return nil, false, fmt.Errorf("found %s but not %s: restore the certificate from a backup, or remove %s to create a new CA (every agent must then enroll again)", keyPath, certPath, keyPath)
	}

	// The directory holds the CA key; nobody but the server's user may list it.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, err
	}
	ca, keyPEM, err := newCA(time.Now())
	if err != nil {
		return nil, false, err
	}
	if err := WriteFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return nil, false, err
	}
	if err := WriteFileAtomic(certPath, ca.CertPEM, 0o644); err != nil {
		return nil, false, err
	}
	return ca, true, nil
}

func newCA(now time.Time) (*CA, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: caCommonName},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// The CA signs leaf certificates only; no intermediate may chain to it.
		MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	ca := &CA{Cert: cert, Key: key, CertPEM: encodePEM("CERTIFICATE", der)}
	return ca, encodePEM("PRIVATE KEY", keyDER), nil
}

func loadCA(certPath, keyPath string, now time.Time) (*CA, error) {
	cert, err := readCertFile(certPath)
	if err != nil {
		return nil, err
	}
	key, err := readKeyFile(keyPath)
	if err != nil {
		return nil, err
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, fmt.Errorf("%s is not a CA certificate", certPath)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%s may not sign certificates (key usage lacks certSign)", certPath)
	}
	if !publicKeyMatches(cert.PublicKey, key) {
		return nil, fmt.Errorf("%s is not the key of %s", keyPath, certPath)
	}
	if now.After(cert.NotAfter) {
		return nil, fmt.Errorf("%s expired on %s", certPath, cert.NotAfter.UTC().Format(time.RFC3339))
	}
	// Re-encoded from DER so comments or extra text in the file never reach agents.
	return &CA{Cert: cert, Key: key, CertPEM: encodePEM("CERTIFICATE", cert.Raw)}, nil
}

// Hash is the CA's public-key hash that join tokens carry and agents pin,
// computed as kubeadm's discovery-token-ca-cert-hash.
func (ca *CA) Hash() string { return SPKIHash(ca.Cert) }

// Fingerprint is the hex SHA-256 of the certificate's DER: it names one
// certificate exactly, so the store can tell a target's current certificate
// from an older one with the same key.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// SPKIHash is "sha256:" and the hex SHA-256 of the certificate's
// SubjectPublicKeyInfo. It names a key, not a certificate, so a CA
// certificate re-issued for the same key keeps its hash.
func SPKIHash(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return hashPrefix + hex.EncodeToString(sum[:])
}

// CAPoolFromPEM parses a PEM bundle of CA certificates into a pool. It fails
// on anything else in the bundle, so a server certificate given by mistake is
// reported instead of silently trusted.
func CAPoolFromPEM(caPEM []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	rest := caPEM
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if n == 1 {
				return nil, errors.New("CA bundle: no PEM certificate")
			}
			if len(bytes.TrimSpace(rest)) != 0 {
				return nil, fmt.Errorf("CA bundle: data after certificate %d is not PEM", n-1)
			}
			return pool, nil
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("CA bundle: PEM block %d is %q, want \"CERTIFICATE\"", n, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CA bundle: certificate %d: %w", n, err)
		}
		if !cert.BasicConstraintsValid || !cert.IsCA {
			return nil, fmt.Errorf("CA bundle: certificate %d (%q) is not a CA", n, cert.Subject.CommonName)
		}
		pool.AddCert(cert)
	}
}

// randomSerial returns a random positive 128-bit serial: RFC 5280 wants
// serials unique per CA, and randomness also keeps them unpredictable.
func randomSerial() *big.Int {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails; it crashes the program instead.
	n := new(big.Int).SetBytes(b)
	if n.Sign() == 0 {
		n.SetInt64(1) // RFC 5280 forbids zero; one chance in 2^128.
	}
	return n
}

// publicKeyMatches reports whether key is the private half of pub.
func publicKeyMatches(pub crypto.PublicKey, key crypto.Signer) bool {
	k, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(pub)
}
