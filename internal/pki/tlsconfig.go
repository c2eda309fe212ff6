package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
)

// Both ends are Tentacle, so nothing older than TLS 1.3 needs to be spoken.
const minTLSVersion = tls.VersionTLS13

// ServerTLSConfig is the server's listener configuration. It requests a
// client certificate but does not verify it: Enroll comes without one, and
// the server's RPC layer verifies the certificate of every other call
// against its CAs itself, so that each refusal (no certificate, another CA,
// expired, revoked) reaches the agent as a precise gRPC status rather than
// a failed handshake.
func ServerTLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   minTLSVersion,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequestClientCert,
	}
}

// ClientTLSConfig is an enrolled agent's configuration. The client
// certificate and the trusted CAs are read from cert and roots at every
// handshake, so a renewal or a CA rotation applies to the next connection
// without touching the current one. The server must chain to roots (never
// the system roots) and be valid for serverName.
func ClientTLSConfig(serverName string, cert *atomic.Pointer[tls.Certificate], roots *atomic.Pointer[x509.CertPool]) *tls.Config {
	return &tls.Config{
		MinVersion:           minTLSVersion,
		ServerName:           serverName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert.Load(), nil },
		// Standard verification reads a fixed RootCAs; VerifyConnection does
		// the same checks against the current pool.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server presented no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
				Roots: roots.Load(), Intermediates: inter, DNSName: serverName,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			var unknown x509.UnknownAuthorityError
			if errors.As(err, &unknown) {
				return fmt.Errorf("server certificate is not from the CA this agent enrolled with: another server, or someone in between (%w)", err)
			}
			if err != nil {
				return fmt.Errorf("server certificate: %w", err)
			}
			return nil
		},
	}
}

// PinnedTLSConfig is the configuration for enrollment, when the agent knows
// only the CA hash from its join token. The handshake succeeds only if the
// server's chain holds a CA certificate whose SPKIHash is caHash and the
// server certificate verifies against that CA for serverName.
//
// serverName should be set: when it is empty the name sent in SNI is used,
// and SNI cannot carry an IP address.
func PinnedTLSConfig(caHash, serverName string) *tls.Config {
	return &tls.Config{
		MinVersion: minTLSVersion,
		ServerName: serverName,
		// Standard verification needs the CA certificate, which the agent
		// does not have yet; verifyPinned does all of its work instead.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyPinned(cs, caHash, serverName)
		},
	}
}

func verifyPinned(cs tls.ConnectionState, caHash, serverName string) error {
	if serverName == "" {
		serverName = cs.ServerName
	}
	if serverName == "" {
		return errors.New("no server name to check the server certificate against")
	}
	chain := cs.PeerCertificates
	if len(chain) == 0 {
		return errors.New("server sent no certificate")
	}
	// The pinned CA may sit anywhere above the leaf; whatever else the
	// server sent can only serve as an intermediate below it.
	var pinned *x509.Certificate
	intermediates := x509.NewCertPool()
	for _, c := range chain[1:] {
		if pinned == nil && c.BasicConstraintsValid && c.IsCA && SPKIHash(c) == caHash {
			pinned = c
			continue
		}
		intermediates.AddCert(c)
	}
	if pinned == nil {
		return fmt.Errorf("server CA does not match the pinned hash %s (got %s): the token belongs to another server, or someone is in between",
			caHash, SPKIHash(chain[len(chain)-1]))
	}
	roots := x509.NewCertPool()
	roots.AddCert(pinned)
	_, err := chain[0].Verify(x509.VerifyOptions{
		DNSName:       serverName,
		Roots:         roots,
		Intermediates: intermediates,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("server certificate: %w", err)
	}
	return nil
}
