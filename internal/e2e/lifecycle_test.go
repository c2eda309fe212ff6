package e2e

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

// TestPromotionThroughTheLifecycle: one agent per environment; a release
// goes dev → test → prod, and skipping test is refused until test succeeded.
func TestPromotionThroughTheLifecycle(t *testing.T) {
	t.Parallel()
	c := startCluster(t, t.TempDir(), "")
	runners := map[string]*fakeRunner{}
	for _, env := range []string{"dev", "test", "prod"} {
		c.must(c.admin.CreateEnvironment(c.ctx(), &tentaclev1.CreateEnvironmentRequest{Name: env}))
		dir := t.TempDir()
		c.enroll(env, dir)
		runners[env] = newFakeRunner()
		runAgent(t, dir, runners[env])
	}
	c.must(c.admin.CreateApplication(c.ctx(), &tentaclev1.CreateApplicationRequest{Name: "web", ImageRepository: "127.0.0.1:5000/team/web",
		RunSpec: &tentaclev1.RunSpec{Env: []*tentaclev1.EnvVar{{Name: "GREETING", Value: "hi"}}}}))
	c.must(c.admin.CreateRelease(c.ctx(), &tentaclev1.CreateReleaseRequest{Application: "web", ImageTag: "1.0"}))

	refused := func(env, want string) {
		t.Helper()
		_, err := c.admin.CreateDeployment(c.ctx(), &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.0", Environment: env})
		if st, _ := status.FromError(err); st.Code() != codes.FailedPrecondition || st.Message() != want {
			t.Fatalf("deploy to %s before its predecessor: %v; want %q", env, err, want)
		}
	}
	refused("test", `release "1.0" of "web" has not succeeded in "dev", the environment before "test": deploy it there first, or pass --force (role admin)`)
	for _, env := range []string{"dev", "test"} {
		if s := c.wait(c.deploy(env, "web", "1.0")).GetDeployment().GetState(); s != tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED {
			t.Fatalf("deployment to %s: %v", env, s)
		}
		if env == "dev" {
			refused("prod", `release "1.0" of "web" has not succeeded in "test", the environment before "prod": deploy it there first, or pass --force (role admin)`)
		}
	}
	if s := c.wait(c.deploy("prod", "web", "1.0")).GetDeployment().GetState(); s != tentaclev1.DeploymentState_DEPLOYMENT_STATE_SUCCEEDED {
		t.Fatalf("deployment to prod: %v", s)
	}
	for env, r := range runners {
		r.mu.Lock()
		n := len(r.calls)
		r.mu.Unlock()
		if n != 1 {
			t.Errorf("the %s agent ran %d tasks, want 1", env, n)
		}
	}
}
