package e2e

import (
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/agent"
	"github.com/tentacle-deploy/tentacle/internal/pki"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
	"github.com/tentacle-deploy/tentacle/server"
)

// TestCertificateRenewalWhileTaskRuns: with 10-second client certificates
// the agent renews after about 7 s, during a running task. The task finishes and
// is reported normally; after a server restart the agent comes back with
// the renewed certificate, and the one before it stops being accepted.
func TestCertificateRenewalWhileTaskRuns(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	c := startClusterWith(t, server.Config{DataDir: dataDir, ClientCertValidity: 10 * time.Second})
	c.setupApp("test", "web")
	agentDir := t.TempDir()
	c.enroll("test", agentDir)
	enrolled, err := agent.LoadIdentity(agentDir)
	if err != nil {
		t.Fatal(err)
	}
	r := newFakeRunner()
	r.hold = make(chan struct{})
	runAgent(t, agentDir, r)
	id := c.deploy("test", "web", "1.0")
	taskID := <-r.started

	st := c.srv.Store()
	first := fingerprint(t, enrolled.CertPEM)
	waitFor(t, "the certificate to be renewed while the task runs", 20*time.Second, func() bool {
		tg, err := st.GetTarget(c.ctx(), enrolled.TargetID)
		return err == nil && tg.CertFingerprint != first
	})
	close(r.hold)
	final := c.wait(id)
	if s := final.GetDeployment().GetState(); s != tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED || r.callCount(taskID) != 1 {
		t.Fatalf("task across a renewal: deployment %v, ran %d times", s, r.callCount(taskID))
	}

	// The certificate on disk is the renewed one, and it is what the agent
	// reconnects with after the server restarts.
	c.stop()
	c2 := startClusterWith(t, server.Config{DataDir: dataDir, Listen: c.addr, ClientCertValidity: 10 * time.Second})
	waitFor(t, "the agent to reconnect with its renewed certificate", 20*time.Second, func() bool {
		ts, err := c2.admin.ListTargets(c2.ctx(), &tentaclev1.ListTargetsRequest{})
		return err == nil && ts.GetTargets()[0].GetConnected()
	})
	tg, err := c2.srv.Store().GetTarget(c2.ctx(), enrolled.TargetID)
	if err != nil {
		t.Fatal(err)
	}
	if tg.CertFingerprint == first || tg.PrevCertFingerprint == first {
		t.Fatalf("the enrollment certificate is still accepted after renewal and reconnect: %+v", tg)
	}
	audit, _ := c2.admin.ListAuditRecords(c2.ctx(), &tentaclev1.ListAuditRecordsRequest{})
	renewals := 0
	for _, rec := range audit.GetRecords() {
		if rec.GetAction() == "RenewCertificate" && rec.GetOutcome() == "ok" {
			renewals++
		}
	}
	if renewals == 0 {
		t.Fatal("no RenewCertificate audit record")
	}
}

func fingerprint(t *testing.T, certPEM []byte) string {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatal("certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pki.Fingerprint(cert)
}
