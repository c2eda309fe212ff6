package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	tentaclev1 "github.com/tentacle-deploy/tentacle/proto/tentacle/v1"
)

func wantRequest(t *testing.T, f *fakeAdmin, want proto.Message) {
	t.Helper()
	if got := f.only(t); !proto.Equal(got, want) {
		t.Errorf("request\n got: %v\nwant: %v", got, want)
	}
}

func wantOutput(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("stdout\n got:\n%s\nwant:\n%s", got, want)
	}
}

func TestEnvCreate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	r := h.run(t, "env", "create", "prod", "--description", "Production, EU")
	wantCode(t, r, 0)
	wantRequest(t, h.fake, &tentaclev1.CreateEnvironmentRequest{Name: "prod", Description: "Production, EU"})
	wantOutput(t, r.stdout, "created environment prod\n")
}

func TestEnvListTableAndJSON(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"env", "list"}, {"envs"}, {"env", "ls"}} {
		h := newHarness(t, &fakeAdmin{})
		r := h.run(t, args...)
		wantCode(t, r, 0)
		wantRequest(t, h.fake, &tentaclev1.ListEnvironmentsRequest{})
		// The tab inside a description must not break the table.
		wantOutput(t, r.stdout, ""+
			"NAME  AUTO-DEPLOY  REQUIRED  DESCRIPTION    CREATED\n"+
			"test  yes          all       -              2026-01-02 03:04:05\n"+
			"prod  no           2         Production EU  2026-01-02 03:04:05\n")
	}

	h := newHarness(t, &fakeAdmin{})
	r := h.run(t, "env", "list", "-o", "json")
	wantCode(t, r, 0)
	var got struct {
		Environments []struct{ Name, Description, CreatedAt string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, r.stdout)
	}
	if len(got.Environments) != 2 || got.Environments[1].Name != "prod" || got.Environments[1].CreatedAt != "2026-01-02T03:04:05Z" {
		t.Errorf("json = %+v", got)
	}
	// Unpopulated fields are present so scripts can rely on the keys.
	if !strings.Contains(r.stdout, `"description": ""`) {
		t.Errorf("empty description missing from json:\n%s", r.stdout)
	}
}

func TestAppCreate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	r := h.run(t, "app", "create", "web", "--image", "team/web",
		"--env", "A=1", "--env", "DSN=postgres://h/db?a=b,c", "--port", "8080:80", "--port", "127.0.0.1::53/udp",
		"--ready-after", "30s", "--stop-timeout", "1m", "--restart", "always",
		"--", "/web", "--listen", ":80")
	wantCode(t, r, 0)
	wantRequest(t, h.fake, &tentaclev1.CreateApplicationRequest{
		Name:            "web",
		ImageRepository: "docker.io/team/web",
		RunSpec: &tentaclev1.RunSpec{
			Env:     []*tentaclev1.EnvVar{{Name: "A", Value: "1"}, {Name: "DSN", Value: "postgres://h/db?a=b,c"}},
			Command: []string{"/web", "--listen", ":80"},
			Ports: []*tentaclev1.PortMapping{
				{ContainerPort: 80, HostPort: 8080, Protocol: "tcp"},
				{ContainerPort: 53, Protocol: "udp", HostIp: "127.0.0.1"},
			},
			ReadyAfter:    durationpb.New(30 * time.Second),
			StopTimeout:   durationpb.New(time.Minute),
			RestartPolicy: "always",
		},
	})
	wantOutput(t, r.stdout, "created application web (docker.io/team/web)\n")
}

func TestAppCreateDefaults(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	wantCode(t, h.run(t, "app", "create", "web", "--image", "r.io:5000/team/web"), 0)
	wantRequest(t, h.fake, &tentaclev1.CreateApplicationRequest{
		Name: "web", ImageRepository: "r.io:5000/team/web",
		RunSpec: &tentaclev1.RunSpec{ReadyAfter: durationpb.New(10 * time.Second), StopTimeout: durationpb.New(10 * time.Second), RestartPolicy: "unless-stopped"},
	})
}

// Bad input is rejected before any call, with an error naming the flag.
func TestBadInput(t *testing.T) {
	t.Parallel()
	app := []string{"app", "create", "web", "--image", "team/web"}
	tests := []struct {
		args []string
		want string
	}{
		{append(app, "--port", "80:99999"), `--port "80:99999": container port 99999 out of range 1-65535`},
		{append(app, "--port", "http"), `--port "http": container port "http" is not a number`},
		{append(app, "--port", "8080:80", "--port", "8080:81"), `--port "8080:81": host port 8080/tcp is published twice`},
		{append(app, "--port", "localhost:80:80"), `--port "localhost:80:80": host IP "localhost" is not an IP address`},
		{append(app, "--env", "1A=x"), `--env "1A=x": invalid variable name "1A": use letters, digits and _, not starting with a digit`},
		{append(app, "--env", "PATH"), `--env "PATH": missing '=': use KEY=VALUE (KEY= for an empty value)`},
		{append(app, "--env", "A=1", "--env", "A=2"), `--env "A=2": variable "A" is set twice`},
		{append(app, "--restart", "sometimes"), `--restart: "sometimes": use no, always, unless-stopped or on-failure`},
		{append(app, "--ready-after", "2h"), `--ready-after: 2h0m0s out of range 0-1h0m0s`},
		{append(app, "--stop-timeout", "-1s"), `--stop-timeout: -1s out of range 0-10m`},
		{[]string{"app", "create", "web", "--image", "team/web:1.0"}, `--image: image repository "team/web:1.0" contains a tag: give the tag to the release instead`},
		{[]string{"app", "create", "Web", "--image", "team/web"}, `application name: invalid name "Web": use 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit`},
		{[]string{"env", "create", "prod env"}, `environment name: invalid name "prod env": use 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit`},
		{[]string{"release", "create", "--app", "web", "--tag", "-x"}, `--tag: image tag "-x" is invalid: use up to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'`},
		{[]string{"release", "create", "--app", "web", "--tag", "1", "--digest", "sha256:x"}, `--digest: image digest "sha256:x" is invalid: use sha256: followed by 64 lowercase hex digits`},
		{[]string{"deploy", "--app", "web", "--release", "1", "--env", "PROD"}, `--env: invalid name "PROD": use 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit`},
		{[]string{"deployments", "--limit", "0"}, `--limit 0: must be at least 1`},
		{[]string{"token", "create", "--env", "prod", "--uses", "0"}, `--uses 0: must be at least 1`},
		{[]string{"token", "create", "--env", "prod", "--ttl", "0s"}, `--ttl 0s: must be positive`},
		{[]string{"envs", "-o", "yaml"}, `--output "yaml": use table or json`},
	}
	h := newHarness(t, &fakeAdmin{})
	for _, tt := range tests {
		r := h.run(t, tt.args...)
		if r.code != 2 {
			t.Errorf("%q: exit code %d, want 2", tt.args, r.code)
		}
		first, _, _ := strings.Cut(r.stderr, "\n")
		if want := "tentaclectl: " + tt.want; first != want {
			t.Errorf("%q: stderr\n got: %s\nwant: %s", tt.args, first, want)
		}
	}
	if n := h.fake.count(); n != 0 {
		t.Errorf("server got %d requests for bad input", n)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []refusal{
		{[]string{"frobnicate"}, `unknown command "frobnicate" for "tentaclectl"`},
		{[]string{"deplyo"}, `unknown command "deplyo" for "tentaclectl"; did you mean deploy?`},
		{[]string{"env", "bogus"}, `unknown command "bogus" for "tentaclectl env"`},
		{[]string{"env", "create"}, "missing NAME"},
		{[]string{"env", "create", "a", "b"}, `unexpected argument "b"`},
		{[]string{"envs", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"app", "create", "web"}, `required flag(s) "image" not set`},
		{[]string{"app", "create", "web", "extra", "--image", "x"}, `unexpected argument "extra" (put the container's command after --)`},
		{[]string{"app", "create", "web", "--image", "x", "--"}, "nothing after --: give the command to run, or leave out --"},
		{[]string{"deploy", "--app", "web"}, `required flag(s) "env", "release" not set`},
		{[]string{"deployments", "--timeout", "soon"}, `invalid argument "soon" for "--timeout" flag: time: invalid duration "soon"`},
	}
	h := newHarness(t, &fakeAdmin{})
	wantRefusals(t, h, tests, "Usage:")
	if n := h.fake.count(); n != 0 {
		t.Errorf("server got %d requests for usage errors", n)
	}
}

func TestAppList(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	r := h.run(t, "apps")
	wantCode(t, r, 0)
	wantRequest(t, h.fake, &tentaclev1.ListApplicationsRequest{})
	wantOutput(t, r.stdout, ""+
		"NAME  IMAGE          PORTS                   CREATED\n"+
		"web   r.io/team/web  8080:80,[::1]:0:53/udp  2026-01-02 03:04:05\n")
}

func TestReleaseCreate(t *testing.T) {
	t.Parallel()
	digest := "sha256:" + strings.Repeat("0a", 32)
	h := newHarness(t, &fakeAdmin{})
	r := h.run(t, "release", "create", "--app", "web", "--tag", "latest", "--version", "2026.01.02", "--digest", digest)
	wantCode(t, r, 0)
	wantRequest(t, h.fake, &tentaclev1.CreateReleaseRequest{Application: "web", ImageTag: "latest", Version: "2026.01.02", ImageDigest: digest})
	wantOutput(t, r.stdout, "created release 2026.01.02 of web: r.io/team/web:latest@"+digest+"\n")
}

func TestReleaseList(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	r := h.run(t, "releases", "--app", "web")
	wantCode(t, r, 0)
	wantRequest(t, h.fake, &tentaclev1.ListReleasesRequest{Application: "web"})
	wantOutput(t, r.stdout, ""+
		"APP  VERSION  IMAGE                DIGEST               CREATED\n"+
		"web  1.4.2    r.io/team/web:1.4.2  sha256:abababababab  2026-01-02 03:04:05\n"+
		"web  1.5.0    r.io/team/web:1.5.0  (on first pull)      2026-01-02 03:04:05\n")
}

var twoTasks = []*tentaclev1.Task{
	{Id: "task-1", DeploymentId: "dep-1", TargetName: "web-1", Wave: 1, State: tentaclev1.TaskState_TASK_STATE_SUCCEEDED, Message: "running sha256:ab", UpdatedAt: timestamppb.New(t0)},
	{Id: "task-2", DeploymentId: "dep-1", TargetName: "web-22", Wave: 2, State: tentaclev1.TaskState_TASK_STATE_FAILED,
		FailureKind: tentaclev1.FailureKind_FAILURE_KIND_IMAGE_NOT_FOUND, Message: "manifest unknown", UpdatedAt: timestamppb.New(t0)},
}

func TestDeployments(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	r := h.run(t, "deployments", "--app", "web", "--env", "prod", "--limit", "5")
	wantCode(t, r, 0)
	wantRequest(t, h.fake, &tentaclev1.ListDeploymentsRequest{Application: "web", Environment: "prod", Limit: 5})
	wantOutput(t, r.stdout, ""+
		"ID     APP  RELEASE  ENV   KIND    ROLLOUT  STATE      CREATED              FINISHED  BY\n"+
		"dep-1  web  1.4.2    prod  deploy  all      succeeded  2026-01-02 03:04:05  -         alice\n")

	h = newHarness(t, &fakeAdmin{})
	wantCode(t, h.run(t, "deployments"), 0)
	wantRequest(t, h.fake, &tentaclev1.ListDeploymentsRequest{Limit: 20})
}

func TestDeploymentShow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{tasks: twoTasks})
	r := h.run(t, "deployment", "show", "dep-1")
	wantCode(t, r, 0)
	wantRequest(t, h.fake, &tentaclev1.GetDeploymentRequest{Id: "dep-1"})
	wantOutput(t, r.stdout, ""+
		"ID:           dep-1\n"+
		"Application:  web\n"+
		"Release:      1.4.2 (release id rel-1)\n"+
		"Environment:  prod\n"+
		"Kind:         deploy\n"+
		"Rollout:      all targets at once\n"+
		"State:        failed\n"+
		"Created:      2026-01-02 03:04:05 by alice\n"+
		"Finished:     -\n"+
		"\n"+
		"TASK    TARGET  WAVE  STATE      FAILURE          UPDATED              MESSAGE\n"+
		"task-1  web-1   1     succeeded  -                2026-01-02 03:04:05  running sha256:ab\n"+
		"task-2  web-22  2     failed     image-not-found  2026-01-02 03:04:05  manifest unknown\n")

	// A rolling rollback that is being cancelled.
	rb := deployment(tentaclev1.DeploymentState_DEPLOYMENT_STATE_RUNNING)
	rb.Kind, rb.CancelRequestedAt = "rollback", timestamppb.New(t0.Add(30*time.Second))
	rb.DeadlineAt = timestamppb.New(t0.Add(time.Hour))
	rb.Rollout = &tentaclev1.Rollout{Window: 1, Pause: durationpb.New(30 * time.Second), FailurePolicy: "continue"}
	h = newHarness(t, &fakeAdmin{dep: rb})
	r = h.run(t, "deployment", "show", "dep-1")
	wantCode(t, r, 0)
	wantOutput(t, r.stdout, ""+
		"ID:            dep-1\n"+
		"Application:   web\n"+
		"Release:       1.4.2 (release id rel-1)\n"+
		"Environment:   prod\n"+
		"Kind:          rollback\n"+
		"Rollout:       1 per wave, 30s pause, on failure continue\n"+
		"State:         cancelling\n"+
		"Created:       2026-01-02 03:04:05 by alice\n"+
		"Deadline:      2026-01-02 04:04:05\n"+
		"Cancel asked:  2026-01-02 03:04:35\n"+
		"Finished:      -\n"+
		"\n"+
		"TASK  TARGET  WAVE  STATE  FAILURE  UPDATED  MESSAGE\n")
}

func TestTasks(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{tasks: twoTasks[:1]})
	r := h.run(t, "tasks")
	wantCode(t, r, 0)
	wantRequest(t, h.fake, &tentaclev1.ListTasksRequest{})
	wantOutput(t, r.stdout, ""+
		"DEPLOYMENT  TASK    TARGET  WAVE  STATE      FAILURE  UPDATED              MESSAGE\n"+
		"dep-1       task-1  web-1   1     succeeded  -        2026-01-02 03:04:05  running sha256:ab\n")

	h = newHarness(t, &fakeAdmin{})
	wantCode(t, h.run(t, "tasks", "--deployment", "dep-1"), 0)
	wantRequest(t, h.fake, &tentaclev1.ListTasksRequest{DeploymentId: "dep-1"})
}

func TestLogs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{logChunks: []string{"pulling\n", "started\x1b[0m\n", "no newline"}})
	r := h.run(t, "logs", "task-1", "-f", "-o", "json")
	wantCode(t, r, 0)
	wantRequest(t, h.fake, &tentaclev1.ReadTaskLogRequest{TaskId: "task-1", Follow: true})
	// Raw bytes, whatever -o says.
	wantOutput(t, r.stdout, "pulling\nstarted\x1b[0m\nno newline")
}

func TestTargets(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{targets: []*tentaclev1.Target{
		{Name: "web-1", Environment: "prod", Roles: []string{"web", "edge"}, Connected: true, LastSeenAt: timestamppb.New(t0.Add(50 * time.Second)),
			AgentVersion: "1.0.0", DockerVersion: "28.5.2", Os: "linux", Arch: "amd64", CertExpiresAt: timestamppb.New(t0.Add(20 * 24 * time.Hour))},
		{Name: "win-1", Environment: "test", LastSeenAt: timestamppb.New(t0.Add(-3 * time.Hour)), Os: "windows", Arch: "amd64"},
		{Name: "new-1", Environment: "test"},
	}})
	r := h.run(t, "targets")
	wantCode(t, r, 0)
	wantRequest(t, h.fake, &tentaclev1.ListTargetsRequest{})
	wantOutput(t, r.stdout, ""+
		"NAME   ENVIRONMENT  ROLES     STATE      LAST SEEN  AGENT  DOCKER  OS/ARCH        CERT EXPIRES\n"+
		"web-1  prod         web,edge  connected  10s ago    1.0.0  28.5.2  linux/amd64    2026-01-22\n"+
		"win-1  test         -         offline    3h ago     -      -       windows/amd64  -\n"+
		"new-1  test         -         offline    never      -      -       -              -\n")
}

func TestTokenCreate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	r := h.run(t, "token", "create", "--env", "prod", "--roles", "web,edge", "--ttl", "2h", "--uses", "3")
	wantCode(t, r, 0)
	wantRequest(t, h.fake, &tentaclev1.CreateJoinTokenRequest{Environment: "prod", Roles: []string{"web", "edge"}, Ttl: durationpb.New(2 * time.Hour), Uses: 3})
	wantOutput(t, r.stdout, ""+
		"join.abc123\n"+
		"\n"+
		"CA hash:  sha256:cafe\n"+
		"Expires:  2026-01-02 05:05:05 (in 2h0m0s)\n"+
		"\n"+
		"To enroll a host into prod, run on it:\n"+
		"  tentacle enroll --server "+h.addr+" --token join.abc123\n"+
		"(127.0.0.1 only reaches this machine: on another host use an address of the server it can reach)\n")

	h = newHarness(t, &fakeAdmin{})
	r = h.run(t, "token", "create", "--env", "prod", "-o", "json")
	wantCode(t, r, 0)
	wantRequest(t, h.fake, &tentaclev1.CreateJoinTokenRequest{Environment: "prod", Ttl: durationpb.New(time.Hour), Uses: 1})
	var got struct{ Token, CaHash string }
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Token != "join.abc123" || got.CaHash != "sha256:cafe" {
		t.Errorf("json = %+v (%v):\n%s", got, err, r.stdout)
	}
}

func TestShellQuote(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"abc.DEF-1_2:3/=+@,": "abc.DEF-1_2:3/=+@,",
		"":                   "''",
		"a b":                "'a b'",
		"$(rm -rf /)":        "'$(rm -rf /)'",
		"it's":               `'it'\''s'`,
		"[::1]:8443":         "'[::1]:8443'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	h := newHarness(t, &fakeAdmin{})
	// No token needed: version does not call the server.
	r := h.runEnv(t, t.Context(), nil, "version")
	wantCode(t, r, 0)
	if !strings.HasPrefix(r.stdout, "tentaclectl dev (go") {
		t.Errorf("stdout = %q", r.stdout)
	}
}
