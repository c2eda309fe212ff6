package pki

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// handshakeResult is what each side of one loopback TLS connection saw.
type handshakeResult struct {
	serverErr error
	clientErr error
	// clientCerts are the certificates the server received from the client.
	clientCerts []*x509.Certificate
}

// handshake connects a real client to a real server on 127.0.0.1. The
// server writes one byte after its handshake and the client reads it: in
// TLS 1.3 the client finishes first, and learns only on that read whether
// the server accepted its certificate.
func handshake(t *testing.T, serverCfg, clientCfg *tls.Config) handshakeResult {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(10 * time.Second)

	type accepted struct {
		err   error
		certs []*x509.Certificate
	}
	done := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- accepted{err: err}
			return
		}
		defer c.Close()
		conn := c.(*tls.Conn)
		_ = conn.SetDeadline(deadline)
		if err := conn.Handshake(); err != nil {
			done <- accepted{err: err}
			return
		}
		_, err = conn.Write([]byte{1})
		done <- accepted{err: err, certs: conn.ConnectionState().PeerCertificates}
	}()

	var res handshakeResult
	conn, err := tls.DialWithDialer(&net.Dialer{Deadline: deadline}, "tcp", ln.Addr().String(), clientCfg)
	if err == nil {
		_ = conn.SetDeadline(deadline)
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	res.clientErr = err
	a := <-done
	res.serverErr, res.clientCerts = a.err, a.certs
	return res
}

// tlsFixture is one server CA with its server certificate and an enrolled
// agent's client certificate.
type tlsFixture struct {
	ca             *CA
	server         tls.Certificate
	clientCert     []byte
	clientKey      []byte
	clientTargetID string
	serverOnlyLeaf tls.Certificate // the server certificate without the CA in its chain
}

func newTLSFixture(t *testing.T, targetID string) tlsFixture {
	t.Helper()
	ca := newTestCA(t)
	server, err := LoadOrCreateServerCert(t.TempDir(), ca, []string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, csrPEM, err := NewKeyAndCSR("agent")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, err := ca.SignCSR(csrPEM, targetID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	onlyLeaf := server
	onlyLeaf.Certificate = server.Certificate[:1]
	return tlsFixture{ca: ca, server: server, clientCert: certPEM, clientKey: keyPEM,
		clientTargetID: targetID, serverOnlyLeaf: onlyLeaf}
}

func TestTLSHandshakes(t *testing.T) {
	t.Parallel()
	ours := newTLSFixture(t, "target-1")
	theirs := newTLSFixture(t, "target-2")
	// An impostor holding a certificate from its own CA sends our CA's
	// certificate along, hoping the pin is checked against the chain only.
	impostor := theirs.server
	impostor.Certificate = [][]byte{theirs.server.Certificate[0], ours.ca.Cert.Raw}

	serverConfig := func(cert tls.Certificate) *tls.Config { return ServerTLSConfig(cert) }
	enrolled := func(f tlsFixture, serverName string) *tls.Config {
		return clientConfig(t, f, ours.ca.CertPEM, serverName)
	}
	mismatch := fmt.Sprintf("server CA does not match the pinned hash %s (got %s): the token belongs to another server, or someone is in between",
		theirs.ca.Hash(), ours.ca.Hash())
	// Verification is off so that only the version can fail.
	tls12 := &tls.Config{MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true}

	tests := []struct {
		name       string
		server     *tls.Config
		client     *tls.Config
		clientErr  string // exact, or a substring when it starts with "…"
		serverErr  string // a substring of Go's own message; "" for success
		wantClient string // the CN the server saw, "" for no client certificate
	}{
		{name: "mTLS with an enrolled certificate", server: serverConfig(ours.server),
			client: enrolled(ours, "127.0.0.1"), wantClient: "target-1"},
		{name: "mTLS by DNS name", server: serverConfig(ours.server),
			client: enrolled(ours, "localhost"), wantClient: "target-1"},
		// TLS only requests the client certificate: the server's RPC layer
		// refuses one from another CA, with a gRPC status (server/agentauth_test.go).
		{name: "client certificate from another CA reaches the RPC layer", server: serverConfig(ours.server),
			client: enrolled(theirs, "127.0.0.1"), wantClient: "target-2"},
		{name: "enrolled agent refuses another CA's server", server: serverConfig(theirs.server),
			client: enrolled(ours, "127.0.0.1"), clientErr: "…server certificate is not from the CA this agent enrolled with", serverErr: "bad certificate"},
		{name: "enrolled agent: server name mismatch", server: serverConfig(ours.server),
			client: enrolled(ours, "tentacle.example.com"), clientErr: "…certificate is valid for localhost, not tentacle.example.com", serverErr: "bad certificate"},
		{name: "pinned: right hash, no client certificate", server: serverConfig(ours.server),
			client: PinnedTLSConfig(ours.ca.Hash(), "127.0.0.1")},
		{name: "pinned: right hash by DNS name", server: serverConfig(ours.server),
			client: PinnedTLSConfig(ours.ca.Hash(), "localhost")},
		{name: "pinned: another server's CA", server: serverConfig(ours.server),
			client: PinnedTLSConfig(theirs.ca.Hash(), "127.0.0.1"), clientErr: mismatch, serverErr: "bad certificate"},
		{name: "pinned: server name mismatch", server: serverConfig(ours.server),
			client:    PinnedTLSConfig(ours.ca.Hash(), "tentacle.example.com"),
			clientErr: "server certificate: x509: certificate is valid for localhost, not tentacle.example.com", serverErr: "bad certificate"},
		{name: "pinned: impostor sends our CA with its own leaf", server: serverConfig(impostor),
			client:    PinnedTLSConfig(ours.ca.Hash(), "127.0.0.1"),
			clientErr: "…server certificate: x509: certificate signed by unknown authority", serverErr: "bad certificate"},
		{name: "pinned: server sends no CA", server: serverConfig(ours.serverOnlyLeaf),
			client: PinnedTLSConfig(ours.ca.Hash(), "127.0.0.1"),
			clientErr: fmt.Sprintf("server CA does not match the pinned hash %s (got %s): the token belongs to another server, or someone is in between",
				ours.ca.Hash(), SPKIHash(ours.server.Leaf)), serverErr: "bad certificate"},
		{name: "TLS 1.2 refused", server: serverConfig(ours.server), client: tls12,
			clientErr: "…protocol version not supported", serverErr: "client offered only unsupported versions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := handshake(t, tt.server, tt.client)
			checkErr(t, "client", res.clientErr, tt.clientErr)
			if tt.serverErr == "" && res.serverErr != nil || tt.serverErr != "" && (res.serverErr == nil || !strings.Contains(res.serverErr.Error(), tt.serverErr)) {
				t.Errorf("server error %v, want one containing %q", res.serverErr, tt.serverErr)
			}
			if tt.clientErr != "" {
				return
			}
			got := ""
			if len(res.clientCerts) > 0 {
				got = res.clientCerts[0].Subject.CommonName
			}
			if got != tt.wantClient {
				t.Errorf("server saw client %q, want %q", got, tt.wantClient)
			}
		})
	}
}

func checkErr(t *testing.T, side string, err error, want string) {
	t.Helper()
	got := errString(err)
	if sub, ok := strings.CutPrefix(want, "…"); ok {
		if !strings.Contains(got, sub) {
			t.Errorf("%s error %q, want one containing %q", side, got, sub)
		}
		return
	}
	if got != want {
		t.Errorf("%s error %q\nwant %q", side, got, want)
	}
}

// clientConfig is an enrolled agent's configuration from PEM, as agent.New
// builds it.
func clientConfig(t *testing.T, f tlsFixture, caPEM []byte, serverName string) *tls.Config {
	t.Helper()
	cert, err := tls.X509KeyPair(f.clientCert, f.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := CAPoolFromPEM(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	var c atomic.Pointer[tls.Certificate]
	var r atomic.Pointer[x509.CertPool]
	c.Store(&cert)
	r.Store(pool)
	return ClientTLSConfig(serverName, &c, &r)
}

func TestTLSConfigsRequireTLS13(t *testing.T) {
	t.Parallel()
	f := newTLSFixture(t, "target-1")
	for name, cfg := range map[string]*tls.Config{
		"server": ServerTLSConfig(f.server),
		"client": clientConfig(t, f, f.ca.CertPEM, "localhost"),
		"pinned": PinnedTLSConfig(f.ca.Hash(), "localhost"),
	} {
		if cfg.MinVersion != tls.VersionTLS13 {
			t.Errorf("%s: MinVersion %x, want TLS 1.3", name, cfg.MinVersion)
		}
	}
}
