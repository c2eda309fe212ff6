package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/tentacle-deploy/tentacle/agent"
	"github.com/tentacle-deploy/tentacle/internal/pki"
	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// TestAgentTrustsOnlyThePinnedServer: at enrollment the agent refuses a
// server whose CA is not the one the token pins; once enrolled it refuses a
// server with another CA at the same address.
func TestAgentTrustsOnlyThePinnedServer(t *testing.T) {
	t.Parallel()
	c := startCluster(t, t.TempDir(), "")
	c.must(c.admin.CreateEnvironment(c.ctx(), &tentaclev1.CreateEnvironmentRequest{Name: "test"}))
	resp, err := c.admin.CreateJoinToken(c.ctx(), &tentaclev1.CreateJoinTokenRequest{Environment: "test"})
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := pki.ParseJoinToken(resp.GetToken())
	other, _, _ := pki.LoadOrCreateCA(t.TempDir())
	forged := pki.JoinToken{ID: tok.ID, Secret: tok.Secret, CAHash: other.Hash()}

	_, err = agent.Enroll(c.ctx(), agent.EnrollOptions{Server: c.addr, Token: forged.String(), DataDir: t.TempDir(), Timeout: 5 * time.Second})
	_, actual := c.srv.CA()
	want := fmt.Sprintf("refusing server at %s: server CA does not match the pinned hash %s (got %s): the token belongs to another server, or someone is in between", c.addr, other.Hash(), actual)
	if err == nil || err.Error() != want {
		t.Fatalf("enroll against the wrong CA:\n got  %v\n want %s", err, want)
	}

	// Enrolled with the real token, the agent will not talk to another
	// server at the same address.
	agentDir := t.TempDir()
	if _, err := agent.Enroll(c.ctx(), agent.EnrollOptions{Server: c.addr, Token: resp.GetToken(), DataDir: agentDir}); err != nil {
		t.Fatal(err)
	}
	addr := c.addr
	c.stop()
	impostor := startCluster(t, t.TempDir(), addr) // a fresh CA
	runAgent(t, agentDir, newFakeRunner())
	time.Sleep(3 * time.Second)
	// Had the agent accepted the impostor's certificate, its Connect calls
	// would reach the impostor and be recorded there (refused, as unknown).
	// The handshake fails on the agent's side instead: nothing arrives.
	audit, err := impostor.admin.ListAuditRecords(impostor.ctx(), &tentaclev1.ListAuditRecordsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range audit.GetRecords() {
		if r.GetAction() == "Connect" {
			t.Fatalf("the agent completed a TLS handshake with a server of another CA: %v", r)
		}
	}
}
