package agent

import (
	"bytes"
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/internal/pki"
)

func issue(t *testing.T, ca *pki.CA) (certPEM, keyPEM []byte) {
	t.Helper()
	keyPEM, csrPEM, err := pki.NewKeyAndCSR("t")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, err = ca.SignCSR(csrPEM, "target-1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM
}

// TestRecoverRenewalAfterCrash covers a crash at each step of saveRenewed:
// the agent must always start with a matching key and certificate, the new
// pair whenever it was completely written.
func TestRecoverRenewalAfterCrash(t *testing.T) {
	t.Parallel()
	ca, _, err := pki.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	oldCert, oldKey := issue(t, ca)
	newCert, newKey := issue(t, ca)
	for _, tc := range []struct {
		name    string
		files   map[string][]byte
		wantNew bool
	}{
		{"both .next written, no rename", map[string][]byte{keyFile: oldKey, certFile: oldCert, keyFile + ".next": newKey, certFile + ".next": newCert}, true},
		{"key renamed, certificate not", map[string][]byte{keyFile: newKey, certFile: oldCert, certFile + ".next": newCert}, true},
		{"only the key .next written", map[string][]byte{keyFile: oldKey, certFile: oldCert, keyFile + ".next": newKey}, false},
		{"torn .next certificate", map[string][]byte{keyFile: oldKey, certFile: oldCert, keyFile + ".next": newKey, certFile + ".next": newCert[:40]}, false},
		{"nothing interrupted", map[string][]byte{keyFile: oldKey, certFile: oldCert}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range tc.files {
				os.WriteFile(filepath.Join(dir, name), data, 0o600)
			}
			if err := recoverRenewal(dir); err != nil {
				t.Fatal(err)
			}
			cert, _ := os.ReadFile(filepath.Join(dir, certFile))
			key, _ := os.ReadFile(filepath.Join(dir, keyFile))
			if _, err := tls.X509KeyPair(cert, key); err != nil {
				t.Fatalf("key and certificate do not match after recovery: %v", err)
			}
			if got := bytes.Equal(cert, newCert); got != tc.wantNew {
				t.Fatalf("recovered the new certificate = %v, want %v", got, tc.wantNew)
			}
			for _, leftover := range []string{keyFile + ".next", certFile + ".next"} {
				if _, err := os.Stat(filepath.Join(dir, leftover)); err == nil {
					t.Errorf("%s left behind", leftover)
				}
			}
		})
	}
}

func TestRenewAtTwoThirdsOfLife(t *testing.T) {
	t.Parallel()
	ca, _, _ := pki.LoadOrCreateCA(t.TempDir())
	certPEM, keyPEM := issue(t, ca)
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	life := c.Leaf.NotAfter.Sub(c.Leaf.NotBefore)
	if got := renewAt(&c).Sub(c.Leaf.NotBefore); got != life*2/3 {
		t.Fatalf("renewal %s after NotBefore, want %s (two thirds of %s)", got, life*2/3, life)
	}
}
