package service

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"text/template"
)

// unitTemplate is our systemd unit; the library's default would restart
// only after 120s and knows nothing of Docker.
//
// The agent runs as root: the Docker socket is root-equivalent, so a
// separate user would add no protection. The hardening below limits what a
// compromised agent process itself can change on the host, and each option
// was chosen to keep the Docker socket (AF_UNIX, /run/docker.sock) and the
// writable paths working:
//   - ProtectSystem=full makes /usr, /boot and /etc read-only, not /run or
//     /var; connecting to a socket is not a write to a file system.
//   - ReadWritePaths reopens the data dir and the config dir; the leading
//     "-" lets the unit start (and report "not enrolled") if one is missing
//     instead of failing with 226/NAMESPACE.
//   - ProtectHome and PrivateTmp hide /home, /root and the host's /tmp:
//     install refuses a binary, config or data dir there.
//   - No RestrictAddressFamilies, PrivateNetwork, PrivateDevices or
//     system-call filter: they would cut off the socket, the network or
//     credential helpers.
//
// StartLimitIntervalSec=0: an agent must come back after a long outage
// (Docker or the network down) instead of hitting the start limit and
// staying failed.
const unitTemplate = `# Written by "tentacle install"; remove it with "tentacle uninstall".
[Unit]
Description={{.Description}}
Documentation=https://github.com/tentacle-deploy/tentacle
After=network-online.target docker.service
Wants=network-online.target docker.service
StartLimitIntervalSec=0

[Service]
Type=simple
ExecStart={{.ExecStart}}
Restart=always
RestartSec=2
TimeoutStopSec=45
KillMode=mixed
NoNewPrivileges=yes
ProtectSystem=full
ProtectHome=yes
PrivateTmp=yes
ReadWritePaths={{.ReadWritePaths}}
ProtectKernelTunables=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
LockPersonality=yes

[Install]
WantedBy=multi-user.target
`

var unitTmpl = template.Must(template.New("unit").Parse(unitTemplate))

// SystemdUnit renders the unit file for spec.
func SystemdUnit(spec Spec, description string) (string, error) {
	if !filepath.IsAbs(spec.Executable) || !filepath.IsAbs(spec.ConfigPath) || !filepath.IsAbs(spec.DataDir) {
		return "", fmt.Errorf("systemd unit: executable, config and data dir must be absolute paths: %q %q %q",
			spec.Executable, spec.ConfigPath, spec.DataDir)
	}
	for _, s := range append([]string{description, spec.Executable, spec.ConfigPath, spec.DataDir}, spec.ExtraArgs...) {
		if strings.ContainsAny(s, "\n\r") {
			return "", fmt.Errorf("systemd unit: a line break in %q", s)
		}
	}
	argv := append([]string{spec.Executable}, spec.Args()...)
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = systemdQuote(a, true)
	}
	var rw []string
	for _, p := range []string{spec.DataDir, filepath.Dir(spec.ConfigPath)} {
		if q := systemdQuoteIfNeeded("-" + p); !contains(rw, q) {
			rw = append(rw, q)
		}
	}
	var b bytes.Buffer
	err := unitTmpl.Execute(&b, struct{ Description, ExecStart, ReadWritePaths string }{
		Description:    strings.ReplaceAll(description, "%", "%%"),
		ExecStart:      strings.Join(quoted, " "),
		ReadWritePaths: strings.Join(rw, " "),
	})
	return b.String(), err
}

// systemdQuote quotes one word for ExecStart: inside double quotes, \ and "
// are escaped, % is doubled (specifiers) and, in a command line, $ too
// (environment expansion).
func systemdQuote(s string, command bool) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "%", "%%")
	s = r.Replace(s)
	if command {
		s = strings.ReplaceAll(s, "$", "$$")
	}
	return `"` + s + `"`
}

// systemdQuoteIfNeeded keeps plain paths readable in path lists.
func systemdQuoteIfNeeded(s string) string {
	if strings.ContainsAny(s, " \t\"'\\") {
		return systemdQuote(s, false)
	}
	return strings.ReplaceAll(s, "%", "%%")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// kardianosScript makes a finished unit safe for the library, which parses
// its SystemdScript option as a template once more: a literal "{{" is
// written as an action printing it.
func kardianosScript(unit string) string {
	return strings.ReplaceAll(unit, "{{", `{{"{{"}}`)
}
