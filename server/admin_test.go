package server

import (
	"regexp"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

func TestBootstrapTokenIsAdminAndShownOnce(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	if s.BootstrapToken == "" {
		t.Fatal("first start created no bootstrap token")
	}
	c := adminClient(t, s, s.BootstrapToken)
	if _, err := c.CreateEnvironment(ctxT(t), &tentaclev1.CreateEnvironmentRequest{Name: "dev"}); err != nil {
		t.Fatalf("bootstrap token cannot create an environment: %v", err)
	}
}

func TestAdminAuthRejections(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := ctxT(t)
	viewer, err := s.CreateAdminToken(ctx, "ci-viewer", RoleViewer, 0)
	if err != nil {
		t.Fatal(err)
	}
	deployer, _ := s.CreateAdminToken(ctx, "ci-deployer", RoleDeployer, 0)
	expired, _ := s.CreateAdminToken(ctx, "old", RoleAdmin, time.Millisecond)
	time.Sleep(5 * time.Millisecond)

	_, err = adminClient(t, s, "").ListEnvironments(ctx, &tentaclev1.ListEnvironmentsRequest{})
	wantStatus(t, err, codes.Unauthenticated, "missing admin token: pass --token or set TENTACLE_TOKEN")

	_, err = adminClient(t, s, "tntadm_"+"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").ListEnvironments(ctx, &tentaclev1.ListEnvironmentsRequest{})
	wantStatus(t, err, codes.Unauthenticated, "invalid admin token: unknown or revoked")

	_, err = adminClient(t, s, expired).ListEnvironments(ctx, &tentaclev1.ListEnvironmentsRequest{})
	st, _ := status.FromError(err)
	if st.Code() != codes.Unauthenticated || !regexp.MustCompile(`^admin token old expired at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`).MatchString(st.Message()) {
		t.Errorf("expired token: got %v %q, want Unauthenticated \"admin token old expired at <RFC 3339 time>\"", st.Code(), st.Message())
	}

	if _, err := adminClient(t, s, viewer).ListEnvironments(ctx, &tentaclev1.ListEnvironmentsRequest{}); err != nil {
		t.Errorf("viewer cannot list: %v", err)
	}
	_, err = adminClient(t, s, viewer).CreateDeployment(ctx, &tentaclev1.CreateDeploymentRequest{Application: "a", ReleaseVersion: "1", Environment: "e"})
	wantStatus(t, err, codes.PermissionDenied, "role viewer may not call CreateDeployment: it needs role deployer")

	_, err = adminClient(t, s, deployer).CreateJoinToken(ctx, &tentaclev1.CreateJoinTokenRequest{Environment: "dev"})
	wantStatus(t, err, codes.PermissionDenied, "role deployer may not call CreateJoinToken: it needs role admin")
}

func TestAdminRejectsBadInputAndStoresNothing(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := adminClient(t, s, s.BootstrapToken)
	ctx := ctxT(t)
	if _, err := c.CreateEnvironment(ctx, &tentaclev1.CreateEnvironmentRequest{Name: "prod"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateApplication(ctx, &tentaclev1.CreateApplicationRequest{Name: "web", ImageRepository: "127.0.0.1:5000/team/web"}); err != nil {
		t.Fatal(err)
	}

	_, err := c.CreateEnvironment(ctx, &tentaclev1.CreateEnvironmentRequest{Name: "Prod Env"})
	wantStatus(t, err, codes.InvalidArgument, `name: invalid name "Prod Env": use 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit`)
	_, err = c.CreateEnvironment(ctx, &tentaclev1.CreateEnvironmentRequest{Name: "prod"})
	wantStatus(t, err, codes.AlreadyExists, `environment "prod": already exists`)

	_, err = c.CreateApplication(ctx, &tentaclev1.CreateApplicationRequest{Name: "api", ImageRepository: "team/api:1.0"})
	wantStatus(t, err, codes.InvalidArgument, `image_repository: image repository "team/api:1.0" contains a tag: give the tag to the release instead`)
	_, err = c.CreateApplication(ctx, &tentaclev1.CreateApplicationRequest{Name: "api", ImageRepository: "r.example.com/api", RunSpec: &tentaclev1.RunSpec{
		Env:   []*tentaclev1.EnvVar{{Name: "1BAD", Value: "x"}},
		Ports: []*tentaclev1.PortMapping{{ContainerPort: 70000, HostPort: 80}},
	}})
	wantStatus(t, err, codes.InvalidArgument, "run_spec: env[0]: invalid variable name \"1BAD\": use letters, digits and _, not starting with a digit\nports[0]: container port 70000 out of range 1-65535")

	_, err = c.CreateRelease(ctx, &tentaclev1.CreateReleaseRequest{Application: "nope", ImageTag: "1.0"})
	wantStatus(t, err, codes.NotFound, `application "nope": not found`)
	_, err = c.CreateRelease(ctx, &tentaclev1.CreateReleaseRequest{Application: "web", ImageTag: "-bad"})
	wantStatus(t, err, codes.InvalidArgument, `image_tag: image tag "-bad" is invalid: use up to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'`)
	_, err = c.CreateRelease(ctx, &tentaclev1.CreateReleaseRequest{Application: "web", ImageTag: "1.0", ImageDigest: "sha256:abc"})
	wantStatus(t, err, codes.InvalidArgument, `image_digest: image digest "sha256:abc" is invalid: use sha256: followed by 64 lowercase hex digits`)

	if _, err := c.CreateRelease(ctx, &tentaclev1.CreateReleaseRequest{Application: "web", ImageTag: "1.0"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateRelease(ctx, &tentaclev1.CreateReleaseRequest{Application: "web", ImageTag: "1.0"})
	wantStatus(t, err, codes.AlreadyExists, `release "1.0" of "web": already exists`)

	_, err = c.CreateDeployment(ctx, &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "9.9", Environment: "prod"})
	wantStatus(t, err, codes.NotFound, `release "9.9" of "web": not found`)
	_, err = c.CreateDeployment(ctx, &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.0", Environment: "staging"})
	wantStatus(t, err, codes.NotFound, `environment "staging": not found`)
	_, err = c.CreateDeployment(ctx, &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.0", Environment: "prod"})
	wantStatus(t, err, codes.FailedPrecondition, "environment \"prod\" has no targets: enroll one with `tentaclectl token create --env prod` and `tentacle enroll`")

	_, err = c.CreateJoinToken(ctx, &tentaclev1.CreateJoinTokenRequest{Environment: "staging"})
	wantStatus(t, err, codes.NotFound, `environment "staging": not found`)
	_, err = c.CreateJoinToken(ctx, &tentaclev1.CreateJoinTokenRequest{Environment: "prod", Ttl: durationpb.New(-time.Second)})
	wantStatus(t, err, codes.InvalidArgument, "ttl: -1s out of range: use more than 0 and at most 720h")

	// Nothing half-written: one app, one release, no deployments.
	apps, _ := c.ListApplications(ctx, &tentaclev1.ListApplicationsRequest{})
	rels, _ := c.ListReleases(ctx, &tentaclev1.ListReleasesRequest{})
	deps, _ := c.ListDeployments(ctx, &tentaclev1.ListDeploymentsRequest{})
	envs, _ := c.ListEnvironments(ctx, &tentaclev1.ListEnvironmentsRequest{})
	if len(apps.GetApplications()) != 1 || len(rels.GetReleases()) != 1 || len(deps.GetDeployments()) != 0 || len(envs.GetEnvironments()) != 1 {
		t.Fatalf("after rejections: %d apps, %d releases, %d deployments, %d envs; want 1, 1, 0, 1",
			len(apps.GetApplications()), len(rels.GetReleases()), len(deps.GetDeployments()), len(envs.GetEnvironments()))
	}
	if d := rels.GetReleases()[0].GetImageDigest(); d != "" {
		t.Fatalf("release without --digest is pinned to %q before any pull", d)
	}
}

func TestCreateApplicationAppliesDefaults(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := adminClient(t, s, s.BootstrapToken)
	resp, err := c.CreateApplication(ctxT(t), &tentaclev1.CreateApplicationRequest{Name: "web", ImageRepository: "nginx"})
	if err != nil {
		t.Fatal(err)
	}
	a := resp.GetApplication()
	if a.GetImageRepository() != "docker.io/library/nginx" || a.GetRunSpec().GetReadyAfter().AsDuration() != 10*time.Second ||
		a.GetRunSpec().GetRestartPolicy() != "unless-stopped" {
		t.Fatalf("application = %v", a)
	}
}
