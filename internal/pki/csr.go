package pki

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	// maxCSRSize is far above any CSR we accept (an 8192-bit RSA one is
	// under 4 KiB) and keeps a hostile enrollment from costing much.
	maxCSRSize = 64 << 10
	// Above 8192 bits RSA buys nothing but slower signature checks, which
	// anyone holding a join token could otherwise make us do.
	minRSABits = 2048
	maxRSABits = 8192
	// maxCommonName is the X.520 upper bound for a common name.
	maxCommonName = 64
)

// ParseCSR decodes a PEM certificate request and checks what SignCSR relies
// on: one "CERTIFICATE REQUEST" block, a key we accept (ECDSA P-256 or
// P-384, Ed25519, RSA of 2048 to 8192 bits) and a valid self-signature with
// SHA-2 or Ed25519, which proves the requester holds the private key.
func ParseCSR(pemBytes []byte) (*x509.CertificateRequest, error) {
	if len(pemBytes) > maxCSRSize {
		return nil, fmt.Errorf("certificate request: %d bytes, want at most %d", len(pemBytes), maxCSRSize)
	}
	// "NEW CERTIFICATE REQUEST" is what older openssl and Windows certreq write.
	block, err := decodePEM(pemBytes, "CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST")
	if err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		// x509's own errors say what is wrong; raw asn1 ones are a wall of
		// struct tags that helps nobody.
		if strings.HasPrefix(err.Error(), "x509: ") {
			return nil, fmt.Errorf("certificate request: %w", err)
		}
		return nil, errors.New("certificate request: malformed DER")
	}
	// The key is checked before the signature so an oversized RSA key is
	// refused before we spend time verifying with it.
	if err := checkClientKey(csr); err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	// x509 still accepts SHA-1 on CSRs, so the algorithm is checked here.
	if !slices.Contains(csrSignatureAlgorithms, csr.SignatureAlgorithm) {
		return nil, fmt.Errorf("certificate request: signature algorithm %v is not accepted", csr.SignatureAlgorithm)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, errors.New("certificate request: signature invalid")
	}
	return csr, nil
}

var csrSignatureAlgorithms = []x509.SignatureAlgorithm{
	x509.ECDSAWithSHA256, x509.ECDSAWithSHA384, x509.ECDSAWithSHA512,
	x509.PureEd25519,
	x509.SHA256WithRSA, x509.SHA384WithRSA, x509.SHA512WithRSA,
	x509.SHA256WithRSAPSS, x509.SHA384WithRSAPSS, x509.SHA512WithRSAPSS,
}

func checkClientKey(csr *x509.CertificateRequest) error {
	switch k := csr.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() || k.Curve == elliptic.P384() {
			return nil
		}
		return fmt.Errorf("ECDSA key on curve %s, want P-256 or P-384", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return nil
	case *rsa.PublicKey:
		switch bits := k.N.BitLen(); {
		case bits < minRSABits:
			return fmt.Errorf("RSA key is %d bits, want at least %d", bits, minRSABits)
		case bits > maxRSABits:
			return fmt.Errorf("RSA key is %d bits, want at most %d", bits, maxRSABits)
		}
		return nil
	}
	return fmt.Errorf("%v key not accepted, want ECDSA P-256 or P-384, Ed25519, or RSA", csr.PublicKeyAlgorithm)
}

// SignCSR issues an agent's client certificate for the key in csrPEM. The
// CSR only proves possession of the key: its subject and any extensions it
// asks for are ignored, and the certificate names commonName (the target id)
// and allows client authentication only.
func (ca *CA) SignCSR(csrPEM []byte, commonName string, validity time.Duration) (certPEM []byte, cert *x509.Certificate, err error) {
	if err := checkCommonName(commonName); err != nil {
		return nil, nil, err
	}
	if validity <= 0 {
		return nil, nil, fmt.Errorf("client certificate validity is %v, want more than zero", validity)
	}
	csr, err := ParseCSR(csrPEM)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: commonName},
		// Backdated for clock skew, but by at most a tenth of the validity:
		// agents renew at two thirds of NotBefore..NotAfter, which must stay
		// close to the validity asked for.
		NotBefore:             now.Add(-min(clockSkew, validity/10)),
		NotAfter:              notAfter(ca, now.Add(validity)),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("sign client certificate: %w", err)
	}
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return encodePEM("CERTIFICATE", der), cert, nil
}

func checkCommonName(cn string) error {
	switch {
	case cn == "":
		return errors.New("client certificate common name is empty")
	case len(cn) > maxCommonName:
		return fmt.Errorf("client certificate common name is %d bytes, want at most %d", len(cn), maxCommonName)
	case !utf8.ValidString(cn):
		return errors.New("client certificate common name is not UTF-8")
	}
	return nil
}

// NewKeyAndCSR makes the agent's key (ECDSA P-256, PKCS#8 PEM) and a CSR for
// it. The key never leaves the agent; the CSR is what Enroll sends.
func NewKeyAndCSR(commonName string) (keyPEM, csrPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: commonName}}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate request: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return encodePEM("PRIVATE KEY", keyDER), encodePEM("CERTIFICATE REQUEST", der), nil
}
