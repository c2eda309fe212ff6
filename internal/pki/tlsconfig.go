package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// Both ends are Tentacle, so nothing older than TLS 1.3 needs to be spoken.
const minTLSVersion = tls.VersionTLS13

// ServerTLSConfig is the server's listener configuration. Client
// certificates are verified against ca when presented but not required:
// Enroll comes without one, and the RPC layer demands one for every other
// call.
func ServerTLSConfig(cert tls.Certificate, ca *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:   minTLSVersion,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    ca,
	}
}

// ClientTLSConfig is an enrolled agent's configuration: it presents the
// agent's certificate and trusts caPEM alone, never the system roots, for
// the server. serverName is the host agents dial; when empty, grpc fills it
// in from the target address.
func ClientTLSConfig(certPEM, keyPEM, caPEM []byte, serverName string) (*tls.Config, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	pool, err := CAPoolFromPEM(caPEM)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   minTLSVersion,
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ServerName:   serverName,
	}, nil
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
