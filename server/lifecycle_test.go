package server

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/tentacle-deploy/tentacle/internal/pki"
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

// enrollWithRoles enrolls a target into env with roles through Enroll.
func enrollWithRoles(t *testing.T, s *Server, c tentaclev1.AdminServiceClient, env, host string, roles ...string) {
	t.Helper()
	tok, err := c.CreateJoinToken(ctxT(t), &tentaclev1.CreateJoinTokenRequest{Environment: env, Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	_, csrPEM, _ := pki.NewKeyAndCSR("h")
	ac, _ := agentConn(t, s, nil, nil)
	if _, err := ac.Enroll(ctxT(t), &tentaclev1.EnrollRequest{Token: tok.GetToken(), CsrPem: csrPEM, Hostname: host}); err != nil {
		t.Fatal(err)
	}
}

func TestApplicationRolesPickTheTargets(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := adminClient(t, s, s.BootstrapToken)
	ctx := ctxT(t)
	c.CreateEnvironment(ctx, &tentaclev1.CreateEnvironmentRequest{Name: "prod"})
	enrollWithRoles(t, s, c, "prod", "web-1", "web", "edge")
	enrollWithRoles(t, s, c, "prod", "web-2", "web")
	enrollWithRoles(t, s, c, "prod", "db-1", "db")
	for name, roles := range map[string][]string{"front": {"web", "edge"}, "site": {"web"}, "any": nil, "cache": {"cache"}} {
		if _, err := c.CreateApplication(ctx, &tentaclev1.CreateApplicationRequest{Name: name, ImageRepository: "r.example.com/" + name, Roles: roles}); err != nil {
			t.Fatal(err)
		}
		c.CreateRelease(ctx, &tentaclev1.CreateReleaseRequest{Application: name, ImageTag: "1"})
	}
	for app, want := range map[string]string{"front": "web-1", "site": "web-1,web-2", "any": "db-1,web-1,web-2"} {
		resp, err := c.CreateDeployment(ctx, &tentaclev1.CreateDeploymentRequest{Application: app, ReleaseVersion: "1", Environment: "prod"})
		if err != nil {
			t.Fatalf("%s: %v", app, err)
		}
		var got []string
		for _, task := range resp.GetTasks() {
			got = append(got, task.GetTargetName())
		}
		slices.Sort(got)
		if strings.Join(got, ",") != want {
			t.Errorf("%s deploys to %v, want %s", app, got, want)
		}
	}
	_, err := c.CreateDeployment(ctx, &tentaclev1.CreateDeploymentRequest{Application: "cache", ReleaseVersion: "1", Environment: "prod"})
	wantStatus(t, err, codes.FailedPrecondition, "environment \"prod\" has no target with the roles of \"cache\" (cache): enroll one with `tentaclectl token create --env prod --roles cache`")
	_, err = c.CreateApplication(ctx, &tentaclev1.CreateApplicationRequest{Name: "bad", ImageRepository: "r.example.com/bad", Roles: []string{"Web Servers"}})
	wantStatus(t, err, codes.InvalidArgument, `roles[0]: invalid name "Web Servers": use 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit`)
}

func TestReleasesListHighestVersionFirst(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := adminClient(t, s, s.BootstrapToken)
	ctx := ctxT(t)
	c.CreateApplication(ctx, &tentaclev1.CreateApplicationRequest{Name: "web", ImageRepository: "r.example.com/web"})
	for _, v := range []string{"1.9.2", "1.10.0", "1.0.0", "1.10.0-rc.1"} {
		if _, err := c.CreateRelease(ctx, &tentaclev1.CreateReleaseRequest{Application: "web", ImageTag: v}); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := c.ListReleases(ctx, &tentaclev1.ListReleasesRequest{Application: "web"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range resp.GetReleases() {
		got = append(got, r.GetVersion())
	}
	if want := "1.10.0,1.10.0-rc.1,1.9.2,1.0.0"; strings.Join(got, ",") != want {
		t.Fatalf("releases %v, want %s", got, want)
	}
}
