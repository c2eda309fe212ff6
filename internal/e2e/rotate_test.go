package e2e

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/internal/pki"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// TestCARotation follows docs/SECURITY.md's procedure with a running agent:
// begin (agent renews onto the next CA and learns it), finish (server
// certificate from the new CA; the agent still connects), end (old CA
// refused). Deployments work at every step and the agent is never
// re-enrolled.
func TestCARotation(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	pkiDir := filepath.Join(dataDir, "pki")
	c := startCluster(t, dataDir, "")
	addr := c.addr
	c.setupApp("test", "web")
	agentDir := t.TempDir()
	c.enroll("test", agentDir)
	oldCA, _, err := pki.LoadOrCreateCA(pkiDir)
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, agentDir, newFakeRunner())
	c.wait(c.deploy("test", "web", "1.0"))

	next, err := pki.BeginRotation(pkiDir)
	if err != nil {
		t.Fatal(err)
	}
	c.stop()
	c = startCluster(t, dataDir, addr)
	waitFor(t, "the agent to renew onto the next CA", 20*time.Second, func() bool {
		// Read the files, never LoadIdentity: that would race the agent's
		// own renewal while it runs.
		certPEM, err1 := os.ReadFile(filepath.Join(agentDir, "agent.crt"))
		caPEM, err2 := os.ReadFile(filepath.Join(agentDir, "ca.crt"))
		return err1 == nil && err2 == nil && issuedBy(certPEM, next.Cert) && countCerts(caPEM) == 2
	})
	deployVersion(t, c, "2.0")
	ts, _ := c.admin.ListTargets(c.ctx(), &tentaclev1.ListTargetsRequest{})
	if got := ts.GetTargets()[0].GetCertCaHash(); got != next.Hash() {
		t.Fatalf("targets show certificate CA %s, want the next CA %s", got, next.Hash())
	}

	if err := pki.FinishRotation(pkiDir); err != nil {
		t.Fatal(err)
	}
	c.stop()
	c = startCluster(t, dataDir, addr)
	if _, hash := c.srv.CA(); hash != next.Hash() {
		t.Fatalf("active CA after finish = %s, want %s", hash, next.Hash())
	}
	deployVersion(t, c, "3.0")

	if err := pki.EndRotation(pkiDir); err != nil {
		t.Fatal(err)
	}
	c.stop()
	c = startCluster(t, dataDir, addr)
	deployVersion(t, c, "4.0")
	if bundle, _ := c.srv.CA(); countCerts(bundle) != 1 {
		t.Fatalf("CA bundle after end-rotation has %d certificates, want 1", countCerts(bundle))
	}
	if _, err := os.Stat(filepath.Join(pkiDir, "ca-old.crt")); !os.IsNotExist(err) {
		t.Fatalf("ca-old.crt still there: %v", err)
	}
	if pki.IssuedBy(c.srv.ServerCertificate(), oldCA.Cert) {
		t.Fatal("server certificate still from the old CA")
	}
}

// deployVersion deploys a new release and requires it to succeed.
func deployVersion(t *testing.T, c *cluster, v string) {
	t.Helper()
	c.must(c.admin.CreateRelease(c.ctx(), &tentaclev1.CreateReleaseRequest{Application: "web", ImageTag: v}))
	if s := c.wait(c.deploy("test", "web", v)).GetDeployment().GetState(); s != tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED {
		t.Fatalf("deployment of %s: %v", v, s)
	}
}

// issuedBy is false for a torn or partial file (read mid-write).
func issuedBy(certPEM []byte, ca *x509.Certificate) bool {
	b, _ := pem.Decode(certPEM)
	if b == nil {
		return false
	}
	c, err := x509.ParseCertificate(b.Bytes)
	return err == nil && pki.IssuedBy(c, ca)
}

func countCerts(bundle []byte) int {
	n := 0
	for rest := bundle; ; n++ {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return n
		}
	}
}
