package service

import (
	"strings"
	"testing"
	"text/template"
)

const wantUnit = `# Written by "tentacle install"; remove it with "tentacle uninstall".
[Unit]
Description=Tentacle deployment agent: dials the Tentacle server and runs deployments with the local Docker engine
Documentation=https://github.com/tentacle-deploy/tentacle
After=network-online.target docker.service
Wants=network-online.target docker.service
StartLimitIntervalSec=0

[Service]
Type=simple
ExecStart="/usr/local/bin/tentacle" "run" "--config" "/etc/tentacle/agent.yaml"
Restart=always
RestartSec=2
TimeoutStopSec=45
KillMode=mixed
NoNewPrivileges=yes
ProtectSystem=full
ProtectHome=yes
PrivateTmp=yes
ReadWritePaths=-/var/lib/tentacle -/etc/tentacle
ProtectKernelTunables=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
LockPersonality=yes

[Install]
WantedBy=multi-user.target
`

func TestSystemdUnitGolden(t *testing.T) {
	t.Parallel()
	got, err := SystemdUnit(Spec{
		Executable: "/usr/local/bin/tentacle",
		ConfigPath: "/etc/tentacle/agent.yaml",
		DataDir:    "/var/lib/tentacle",
	}, description)
	if err != nil {
		t.Fatal(err)
	}
	if got != wantUnit {
		t.Errorf("unit:\n%s\nwant:\n%s", got, wantUnit)
	}
}

func TestSystemdUnitQuoting(t *testing.T) {
	t.Parallel()
	got, err := SystemdUnit(Spec{
		Executable: "/opt/tentacle 2/bin/tentacle",
		ConfigPath: `/etc/tentacle/my "agent" 100%.yaml`,
		DataDir:    "/srv/tentacle data",
		ExtraArgs:  []string{"--log-level", "$debug"},
	}, description)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`ExecStart="/opt/tentacle 2/bin/tentacle" "run" "--config" "/etc/tentacle/my \"agent\" 100%%.yaml" "--log-level" "$$debug"` + "\n",
		`ReadWritePaths="-/srv/tentacle data" -/etc/tentacle` + "\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("unit lacks %q:\n%s", want, got)
		}
	}
}

func TestSystemdUnitRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		spec Spec
		want string
	}{
		{Spec{Executable: "tentacle", ConfigPath: "/etc/t.yaml", DataDir: "/var/lib/tentacle"},
			`systemd unit: executable, config and data dir must be absolute paths: "tentacle" "/etc/t.yaml" "/var/lib/tentacle"`},
		{Spec{Executable: "/usr/bin/tentacle", ConfigPath: "/etc/t\n.yaml", DataDir: "/var/lib/tentacle"},
			`systemd unit: a line break in "/etc/t\n.yaml"`},
	} {
		if _, err := SystemdUnit(tc.spec, description); err == nil || err.Error() != tc.want {
			t.Errorf("SystemdUnit(%+v) = %v, want %q", tc.spec, err, tc.want)
		}
	}
}

// kardianos parses SystemdScript as a template again (with its own funcs);
// what it writes must be our unit unchanged, even with "{{" in a path.
func TestKardianosScriptRoundTrip(t *testing.T) {
	t.Parallel()
	unit, err := SystemdUnit(Spec{Executable: "/usr/bin/tentacle", ConfigPath: "/etc/{{odd}}/agent.yaml", DataDir: "/var/lib/tentacle"}, description)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := template.New("").Funcs(template.FuncMap{"cmd": strings.ToUpper, "cmdEscape": strings.ToUpper}).Parse(kardianosScript(unit))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, struct{ Path string }{"/ignored"}); err != nil {
		t.Fatal(err)
	}
	if b.String() != unit {
		t.Errorf("after kardianos' pass:\n%s\nwant:\n%s", b.String(), unit)
	}
}

func TestPackageUnitIsTheInstallTemplate(t *testing.T) {
	installed, err := SystemdUnit(Spec{Executable: "/usr/bin/tentacle", ConfigPath: "/etc/tentacle/agent.yaml", DataDir: "/var/lib/tentacle"}, description)
	if err != nil {
		t.Fatal(err)
	}
	packaged, err := PackageUnit("/usr/bin/tentacle", "/etc/tentacle/agent.yaml", "/var/lib/tentacle")
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := strings.Cut(installed, "\n")
	if want := "# Shipped by the tentacle package; removing the package removes it.\n" + body; packaged != want {
		t.Fatalf("packaged unit differs from the installed one beyond its first line:\n%s", packaged)
	}
}
