package service

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	ks "github.com/kardianos/service"
)

// fakeController records calls and answers Status as told.
type fakeController struct {
	status    ks.Status
	statusErr error
	callErr   error
	calls     []string
}

func (f *fakeController) call(name string) error { f.calls = append(f.calls, name); return f.callErr }
func (f *fakeController) Install() error         { return f.call("install") }
func (f *fakeController) Uninstall() error       { return f.call("uninstall") }
func (f *fakeController) Start() error           { return f.call("start") }
func (f *fakeController) Stop() error            { return f.call("stop") }
func (f *fakeController) Restart() error         { return f.call("restart") }
func (f *fakeController) Platform() string       { return "linux-systemd" }
func (f *fakeController) Status() (ks.Status, error) {
	return f.status, f.statusErr
}

var (
	notInstalled = fakeController{statusErr: ks.ErrNotInstalled}
	running      = fakeController{status: ks.StatusRunning}
	stopped      = fakeController{status: ks.StatusStopped}
	failed       = fakeController{statusErr: errors.New("service in failed state")}
)

var spec = Spec{Executable: "/usr/local/bin/tentacle", ConfigPath: "/etc/tentacle/agent.yaml", DataDir: "/var/lib/tentacle"}

func TestCommands(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		fake      fakeController
		do        func(Controller, *strings.Builder) error
		wantCalls []string
		wantOut   string
		wantErr   string
	}{
		{"install", notInstalled, func(c Controller, w *strings.Builder) error { return Install(c, w, spec) },
			[]string{"install"}, "installed the tentacle service (linux-systemd): /usr/local/bin/tentacle run --config /etc/tentacle/agent.yaml\nnext: tentacle start\n", ""},
		{"install twice", stopped, func(c Controller, w *strings.Builder) error { return Install(c, w, spec) },
			nil, "", "the service is already installed (linux-systemd, stopped): run `tentacle uninstall` first to change it"},
		{"install over a failed unit", failed, func(c Controller, w *strings.Builder) error { return Install(c, w, spec) },
			nil, "", "the service is already installed (linux-systemd, unknown: service in failed state): run `tentacle uninstall` first to change it"},
		{"install fails", fakeController{statusErr: ks.ErrNotInstalled, callErr: errors.New("permission denied")},
			func(c Controller, w *strings.Builder) error { return Install(c, w, spec) },
			[]string{"install"}, "", "install the linux-systemd service: permission denied"},
		{"uninstall running", running, func(c Controller, w *strings.Builder) error { return Uninstall(c, w) },
			[]string{"stop", "uninstall"}, "uninstalled the tentacle service (linux-systemd); its config and data dir are kept\n", ""},
		{"uninstall stopped", stopped, func(c Controller, w *strings.Builder) error { return Uninstall(c, w) },
			[]string{"uninstall"}, "uninstalled the tentacle service (linux-systemd); its config and data dir are kept\n", ""},
		{"uninstall missing", notInstalled, func(c Controller, w *strings.Builder) error { return Uninstall(c, w) },
			nil, "the service is not installed\n", ""},
		{"start", stopped, func(c Controller, w *strings.Builder) error { return Start(c, w) },
			[]string{"start"}, "started the tentacle service\n", ""},
		{"start failed unit", failed, func(c Controller, w *strings.Builder) error { return Start(c, w) },
			[]string{"start"}, "started the tentacle service\n", ""},
		{"start running", running, func(c Controller, w *strings.Builder) error { return Start(c, w) },
			nil, "the service is already running\n", ""},
		{"start missing", notInstalled, func(c Controller, w *strings.Builder) error { return Start(c, w) },
			nil, "", "the service is not installed: run `tentacle install` first"},
		{"stop", running, func(c Controller, w *strings.Builder) error { return Stop(c, w) },
			[]string{"stop"}, "stopped the tentacle service\n", ""},
		{"stop stopped", stopped, func(c Controller, w *strings.Builder) error { return Stop(c, w) },
			nil, "the service is not running\n", ""},
		{"stop missing", notInstalled, func(c Controller, w *strings.Builder) error { return Stop(c, w) },
			nil, "the service is not installed\n", ""},
		{"restart", running, func(c Controller, w *strings.Builder) error { return Restart(c, w) },
			[]string{"restart"}, "restarted the tentacle service\n", ""},
		{"restart missing", notInstalled, func(c Controller, w *strings.Builder) error { return Restart(c, w) },
			nil, "", "the service is not installed: run `tentacle install` first"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := tc.fake
			var out strings.Builder
			err := tc.do(&f, &out)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr) {
				t.Errorf("error = %v, want %q", err, tc.wantErr)
			}
			if out.String() != tc.wantOut {
				t.Errorf("output = %q, want %q", out.String(), tc.wantOut)
			}
			if !reflect.DeepEqual(f.calls, tc.wantCalls) {
				t.Errorf("calls = %q, want %q", f.calls, tc.wantCalls)
			}
		})
	}
}

func TestInstallTwiceIsErrAlreadyInstalled(t *testing.T) {
	t.Parallel()
	f := running
	if err := Install(&f, &strings.Builder{}, spec); !errors.Is(err, ErrAlreadyInstalled) {
		t.Errorf("error = %v, want ErrAlreadyInstalled", err)
	}
}

func TestWriteStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		fake fakeController
		want string
	}{
		{running, "service: running (linux-systemd)\nserver:  tentacle.example.com:8443\n"},
		{stopped, "service: stopped (linux-systemd)\nserver:  tentacle.example.com:8443\n"},
		{notInstalled, "service: not installed (linux-systemd)\nserver:  tentacle.example.com:8443\n"},
		{failed, "service: unknown: service in failed state (linux-systemd)\nserver:  tentacle.example.com:8443\n"},
	} {
		f := tc.fake
		var out strings.Builder
		WriteStatus(&out, &f, "tentacle.example.com:8443")
		if out.String() != tc.want {
			t.Errorf("status = %q, want %q", out.String(), tc.want)
		}
		if len(f.calls) != 0 {
			t.Errorf("status changed the service: %q", f.calls)
		}
	}
}
