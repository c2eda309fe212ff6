package server

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

func TestLifecycleRefusesSkippingAndOnlyAdminsForce(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	root := adminClient(t, s, s.BootstrapToken)
	ctx := ctxT(t)
	for _, env := range []string{"dev", "test"} {
		if _, err := root.CreateEnvironment(ctx, &tentaclev1.CreateEnvironmentRequest{Name: env}); err != nil {
			t.Fatal(err)
		}
	}
	enrollRaw(t, s, root, "prod") // creates prod, the third environment, with a target
	envs, _ := root.ListEnvironments(ctx, &tentaclev1.ListEnvironmentsRequest{})
	for i, e := range envs.GetEnvironments() {
		if int(e.GetPosition()) != i+1 {
			t.Errorf("environment %s at position %d, want %d", e.GetName(), e.GetPosition(), i+1)
		}
	}
	root.CreateApplication(ctx, &tentaclev1.CreateApplicationRequest{Name: "web", ImageRepository: "r.example.com/web"})
	root.CreateRelease(ctx, &tentaclev1.CreateReleaseRequest{Application: "web", ImageTag: "1.0"})
	req := &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.0", Environment: "prod"}

	_, err := root.CreateDeployment(ctx, req)
	wantStatus(t, err, codes.FailedPrecondition, `release "1.0" of "web" has not succeeded in "test", the environment before "prod": deploy it there first, or pass --force (role admin)`)

	deployerTok, _ := s.CreateAdminToken(ctx, "ci", RoleDeployer, 0)
	req.Force = true
	_, err = adminClient(t, s, deployerTok).CreateDeployment(ctx, req)
	wantStatus(t, err, codes.PermissionDenied, "--force needs role admin: role deployer deploys along the lifecycle only")

	resp, err := root.CreateDeployment(ctx, req)
	if err != nil {
		t.Fatalf("admin --force: %v", err)
	}
	recs, _ := root.ListAuditRecords(ctx, &tentaclev1.ListAuditRecordsRequest{})
	found := false
	for _, r := range recs.GetRecords() {
		found = found || (r.GetActor() == "admin-token:bootstrap" && r.GetAction() == "CreateDeployment" && r.GetOutcome() == "ok" &&
			strings.Contains(r.GetObject(), resp.GetDeployment().GetId()) && strings.Contains(r.GetObject(), "--force"))
	}
	if !found {
		t.Fatalf("no audit record of the forced deployment in %v", recs.GetRecords())
	}
}
