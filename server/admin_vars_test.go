package server

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

const testSecret = "s3cr3t-Pa55word-xyz"

func setVar(app, name, value string, sensitive bool, sc *tentaclev1.VariableScope) *tentaclev1.SetVariableRequest {
	return &tentaclev1.SetVariableRequest{Variable: &tentaclev1.Variable{Application: app, Name: name, Value: value, Sensitive: sensitive, Scope: sc}}
}

func TestVariablesRejectBadInputAndKeepWhatIsStored(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := adminClient(t, s, s.BootstrapToken)
	ctx := ctxT(t)
	c.CreateEnvironment(ctx, &tentaclev1.CreateEnvironmentRequest{Name: "prod"})
	enrollWithRoles(t, s, c, "prod", "web-1", "web")
	if _, err := c.CreateApplication(ctx, &tentaclev1.CreateApplicationRequest{Name: "web", ImageRepository: "r.example.com/web"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetVariable(ctx, setVar("web", "DB_HOST", "db.prod", false, nil)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		req  *tentaclev1.SetVariableRequest
		code codes.Code
		msg  string
	}{
		{&tentaclev1.SetVariableRequest{}, codes.InvalidArgument, "variable: required"},
		{setVar("web", "1BAD", "x", false, nil), codes.InvalidArgument, `name: invalid variable name "1BAD": use letters, digits and _, not starting with a digit`},
		{setVar("nope", "X", "x", false, nil), codes.NotFound, `application "nope": not found`},
		{setVar("web", "X", "x", false, &tentaclev1.VariableScope{Environment: "staging"}), codes.InvalidArgument,
			"scope.environment: no environment \"staging\": create it with `tentaclectl env create staging`, or fix the name"},
		{setVar("web", "X", "x", false, &tentaclev1.VariableScope{Role: "Web Servers"}), codes.InvalidArgument,
			`scope.role: invalid name "Web Servers": use 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit`},
		{setVar("web", "X", "x", false, &tentaclev1.VariableScope{Target: "web-9"}), codes.InvalidArgument,
			"scope.target: no target \"web-9\": see `tentaclectl targets` for the names"},
		{setVar("web", "DB_HOST", "x${", false, nil), codes.InvalidArgument,
			`value: unterminated "${" at byte 1: close it with }, or write $${ for a literal ${`},
		{setVar("web", "DB_HOST", "a${"+testSecret+"}", true, nil), codes.InvalidArgument,
			"value: the sensitive value has a malformed ${...} reference (not shown): close it with }, or write $${ for a literal ${"},
	} {
		_, err := c.SetVariable(ctx, tc.req)
		wantStatus(t, err, tc.code, tc.msg)
	}
	_, err := c.CreateApplication(ctx, &tentaclev1.CreateApplicationRequest{Name: "api", ImageRepository: "r.example.com/api",
		RunSpec: &tentaclev1.RunSpec{Env: []*tentaclev1.EnvVar{{Name: "OK", Value: "${LATER}"}, {Name: "URL", Value: "http://${HOST"}}}})
	wantStatus(t, err, codes.InvalidArgument, `run_spec: env[1]: value of URL: unterminated "${" at byte 7: close it with }, or write $${ for a literal ${`)
	_, err = c.DeleteVariable(ctx, &tentaclev1.DeleteVariableRequest{Application: "web", Name: "DB_HOST", Scope: &tentaclev1.VariableScope{Environment: "prod"}})
	wantStatus(t, err, codes.NotFound, "application \"web\" has no variable DB_HOST with environment \"prod\": see `tentaclectl var list web` for the scopes it has")

	list, err := c.ListVariables(ctx, &tentaclev1.ListVariablesRequest{Application: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if vs := list.GetVariables(); len(vs) != 1 || vs[0].GetName() != "DB_HOST" || vs[0].GetValue() != "db.prod" {
		t.Fatalf("variables after the refusals: %v", vs)
	}
	recs, _ := c.ListAuditRecords(ctx, &tentaclev1.ListAuditRecordsRequest{})
	for _, r := range recs.GetRecords() {
		if strings.Contains(r.String(), testSecret) {
			t.Errorf("audit record holds the secret: %v", r)
		}
	}
}

func TestVariablesRolesSensitiveValuesAndReleases(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	root := adminClient(t, s, s.BootstrapToken)
	ctx := ctxT(t)
	root.CreateEnvironment(ctx, &tentaclev1.CreateEnvironmentRequest{Name: "prod"})
	if _, err := root.CreateApplication(ctx, &tentaclev1.CreateApplicationRequest{Name: "web", ImageRepository: "r.example.com/web",
		RunSpec: &tentaclev1.RunSpec{Env: []*tentaclev1.EnvVar{{Name: "DSN", Value: "postgres://app:${DB_PASSWORD}@db"}}}}); err != nil {
		t.Fatal(err)
	}
	viewerTok, _ := s.CreateAdminToken(ctx, "viewer", RoleViewer, 0)
	deployerTok, _ := s.CreateAdminToken(ctx, "ci", RoleDeployer, 0)
	viewer, deployer := adminClient(t, s, viewerTok), adminClient(t, s, deployerTok)

	_, err := viewer.SetVariable(ctx, setVar("web", "X", "1", false, nil))
	wantStatus(t, err, codes.PermissionDenied, "role viewer may not call SetVariable: it needs role deployer")
	_, err = viewer.DeleteVariable(ctx, &tentaclev1.DeleteVariableRequest{Application: "web", Name: "X"})
	wantStatus(t, err, codes.PermissionDenied, "role viewer may not call DeleteVariable: it needs role deployer")

	// The run spec refers to DB_PASSWORD, which no scope defines yet.
	_, err = deployer.CreateRelease(ctx, &tentaclev1.CreateReleaseRequest{Application: "web", ImageTag: "1.0"})
	wantStatus(t, err, codes.FailedPrecondition, `application "web": run spec env entry DSN: ${DB_PASSWORD} names no variable or env entry: define DB_PASSWORD, or write $${DB_PASSWORD} for a literal ${DB_PASSWORD}`)

	resp, err := deployer.SetVariable(ctx, setVar("web", "DB_PASSWORD", testSecret, true, &tentaclev1.VariableScope{Environment: "prod"}))
	if err != nil {
		t.Fatal(err)
	}
	if v := resp.GetVariable(); v.GetValue() != "" || !v.GetSensitive() || v.GetUpdatedBy() != "ci" {
		t.Errorf("SetVariable answered %v: a sensitive value must not be echoed", v)
	}
	if _, err := deployer.SetVariable(ctx, setVar("web", "LOG_LEVEL", "debug", false, nil)); err != nil {
		t.Fatal(err)
	}
	list, err := viewer.ListVariables(ctx, &tentaclev1.ListVariablesRequest{Application: "web"})
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, v := range list.GetVariables() {
		got = append(got, v.GetName()+"="+v.GetValue()+"|"+v.GetScope().GetEnvironment())
	}
	if want := []string{"DB_PASSWORD=|prod", "LOG_LEVEL=debug|"}; !slices.Equal(got, want) {
		t.Errorf("ListVariables = %v, want %v", got, want)
	}

	rel, err := deployer.CreateRelease(ctx, &tentaclev1.CreateReleaseRequest{Application: "web", ImageTag: "1.0"})
	if err != nil {
		t.Fatal(err)
	}
	if vs := rel.GetRelease().GetVariables(); len(vs) != 2 || vs[0].GetValue() != "" || vs[1].GetValue() != "debug" {
		t.Errorf("release variables = %v", vs)
	}
	// Deleting afterwards leaves the release's snapshot alone.
	if _, err := deployer.DeleteVariable(ctx, &tentaclev1.DeleteVariableRequest{Application: "web", Name: "LOG_LEVEL"}); err != nil {
		t.Fatal(err)
	}
	rels, _ := viewer.ListReleases(ctx, &tentaclev1.ListReleasesRequest{Application: "web"})
	if vs := rels.GetReleases()[0].GetVariables(); len(vs) != 2 || strings.Contains(rels.String(), testSecret) {
		t.Errorf("listed release variables = %v", vs)
	}

	recs, _ := root.ListAuditRecords(ctx, &tentaclev1.ListAuditRecordsRequest{})
	var objects []string
	for _, r := range recs.GetRecords() {
		if strings.Contains(r.String(), testSecret) {
			t.Errorf("audit record holds the secret: %v", r)
		}
		if strings.HasSuffix(r.GetAction(), "Variable") && r.GetOutcome() == "ok" {
			objects = append(objects, r.GetActor()+" "+r.GetAction()+" "+r.GetObject())
		}
	}
	want := []string{
		`admin-token:ci SetVariable variable/web/DB_PASSWORD (environment "prod")`,
		`admin-token:ci SetVariable variable/web/LOG_LEVEL (no scope)`,
		`admin-token:ci DeleteVariable variable/web/LOG_LEVEL (no scope)`,
	}
	if !slices.Equal(objects, want) {
		t.Errorf("audit records:\n%s\nwant\n%s", strings.Join(objects, "\n"), strings.Join(want, "\n"))
	}
}

func TestAssignmentCarriesVariablesResolvedForTheTarget(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := adminClient(t, s, s.BootstrapToken)
	ctx := ctxT(t)
	id, certPEM, keyPEM := enrollRaw(t, s, c, "prod")
	tgt, err := s.store.GetTarget(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	c.CreateEnvironment(ctx, &tentaclev1.CreateEnvironmentRequest{Name: "dev"})
	c.CreateApplication(ctx, &tentaclev1.CreateApplicationRequest{Name: "web", ImageRepository: "r.example.com/web",
		RunSpec: &tentaclev1.RunSpec{Env: []*tentaclev1.EnvVar{{Name: "MODE", Value: "spec"}, {Name: "DSN", Value: "pg://app:${DB_PASSWORD}@${DB_HOST}"}}}})
	for _, req := range []*tentaclev1.SetVariableRequest{
		setVar("web", "DB_HOST", "db.local", false, nil),
		setVar("web", "DB_HOST", "db.prod", false, &tentaclev1.VariableScope{Environment: "prod"}),
		setVar("web", "DB_HOST", "db.mine", false, &tentaclev1.VariableScope{Target: tgt.Name}),
		setVar("web", "MODE", "variable", false, nil),
		setVar("web", "DB_PASSWORD", testSecret, true, nil),
		setVar("web", "DB_PASSWORD", "not-for-prod", true, &tentaclev1.VariableScope{Environment: "dev"}),
	} {
		if _, err := c.SetVariable(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	_, _, _, a := releaseAndReceive(t, s, c, certPEM, keyPEM)
	var env []string
	for _, e := range a.GetRunSpec().GetEnv() {
		env = append(env, e.GetName()+"="+e.GetValue())
	}
	want := []string{"MODE=variable", "DSN=pg://app:" + testSecret + "@db.mine", "DB_HOST=db.mine", "DB_PASSWORD=" + testSecret}
	if !slices.Equal(env, want) {
		t.Errorf("assigned env = %v\nwant %v", env, want)
	}
	if got := a.GetSensitiveEnv(); !slices.Equal(got, []string{"DB_PASSWORD", "DSN"}) {
		t.Errorf("sensitive_env = %v, want [DB_PASSWORD DSN]", got)
	}
}

// releaseAndReceive creates release 1.0 of web, deploys it to prod and
// connects as the agent of certPEM, which receives the task.
func releaseAndReceive(t *testing.T, s *Server, c tentaclev1.AdminServiceClient, certPEM, keyPEM []byte) (
	*tentaclev1.CreateDeploymentResponse, tentaclev1.AgentServiceClient, tentaclev1.AgentService_ConnectClient, *tentaclev1.TaskAssignment) {
	t.Helper()
	ctx := ctxT(t)
	if _, err := c.CreateRelease(ctx, &tentaclev1.CreateReleaseRequest{Application: "web", ImageTag: "1.0"}); err != nil {
		t.Fatal(err)
	}
	dep, err := c.CreateDeployment(ctx, &tentaclev1.CreateDeploymentRequest{Application: "web", ReleaseVersion: "1.0", Environment: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	ac, _ := agentConn(t, s, certPEM, keyPEM)
	stream, err := connect(t, ac, "i1")
	if err != nil {
		t.Fatal(err)
	}
	m, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return dep, ac, stream, m.GetAssign().GetTask()
}
