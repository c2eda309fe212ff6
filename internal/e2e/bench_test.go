package e2e

import (
	"fmt"
	"testing"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// BenchmarkDeploymentRoundTrip measures one deployment from CreateDeployment
// to the deployment finishing: store writes, dispatch, the agent's journal
// (fsyncs), events and their acks, over real mTLS gRPC on loopback. The
// Docker side is the fake runner, so this is the control path's cost alone.
func BenchmarkDeploymentRoundTrip(b *testing.B) {
	c := startCluster(b, b.TempDir(), "")
	c.setupApp("bench", "web")
	agentDir := b.TempDir()
	c.enroll("bench", agentDir)
	runAgent(b, agentDir, newFakeRunner())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v := fmt.Sprintf("b.%d", i)
		c.must(c.admin.CreateRelease(c.ctx(), &tentaclev1.CreateReleaseRequest{Application: "web", ImageTag: v}))
		if s := c.wait(c.deploy("bench", "web", v)).GetDeployment().GetState(); s != tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED {
			b.Fatalf("deployment %s", s)
		}
	}
}
