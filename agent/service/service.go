// Package service installs, controls and runs the agent as a system service
// through kardianos/service: systemd with our own unit (see unit.go), SysV
// and OpenRC with the library's scripts, and the Windows Service Control
// Manager with restart-on-failure recovery actions.
//
// It holds no agent logic: the run function is passed in. It must not import
// server packages.
package service

import (
	"errors"
	"fmt"
	"io"
	"strings"

	ks "github.com/kardianos/service"
)

// Name is the service's name in systemd, SysV, OpenRC and the SCM.
const Name = "tentacle"

const description = "Tentacle deployment agent: dials the Tentacle server and runs deployments with the local Docker engine"

// Controller is the part of kardianos' service.Service the commands use;
// tests put a fake in its place.
type Controller interface {
	Install() error
	Uninstall() error
	Start() error
	Stop() error
	Restart() error
	Status() (ks.Status, error)
	Platform() string
}

// Spec is what an installed service runs: `Executable run --config
// ConfigPath ExtraArgs...`.
type Spec struct {
	Executable string   // absolute path of the tentacle binary
	ConfigPath string   // absolute path passed as --config
	DataDir    string   // the config's data dir; the service must be able to write it
	ExtraArgs  []string // further `tentacle run` flags given to install, e.g. --data-dir
}

// Args are the service's command-line arguments after the executable.
func (s Spec) Args() []string {
	return append([]string{"run", "--config", s.ConfigPath}, s.ExtraArgs...)
}

// NewConfig is the kardianos config for spec on this OS.
func NewConfig(spec Spec) (*ks.Config, error) {
	opts, err := platformOptions(spec)
	if err != nil {
		return nil, err
	}
	return &ks.Config{
		Name:        Name,
		DisplayName: "Tentacle agent",
		Description: description,
		Executable:  spec.Executable,
		Arguments:   spec.Args(),
		Option:      opts,
	}, nil
}

// ErrAlreadyInstalled is returned by Install for a service that exists.
var ErrAlreadyInstalled = errors.New("the service is already installed")

// Install installs the service unless it exists: changing an installed
// service is an explicit uninstall first, never a silent overwrite.
func Install(c Controller, w io.Writer, spec Spec) error {
	st, err := c.Status()
	if !errors.Is(err, ks.ErrNotInstalled) {
		// Any other answer, including an error such as systemd's failed
		// state, means there is a service by that name.
		return fmt.Errorf("%w (%s, %s): run `tentacle uninstall` first to change it",
			ErrAlreadyInstalled, c.Platform(), describe(st, err))
	}
	if err := c.Install(); err != nil {
		return fmt.Errorf("install the %s service: %w", c.Platform(), err)
	}
	fmt.Fprintf(w, "installed the %s service (%s): %s\nnext: tentacle start\n",
		Name, c.Platform(), strings.Join(append([]string{spec.Executable}, spec.Args()...), " "))
	return nil
}

// Uninstall stops and removes the service; a missing service is not an
// error. The config and the data dir (the enrollment) are kept.
func Uninstall(c Controller, w io.Writer) error {
	st, err := c.Status()
	if errors.Is(err, ks.ErrNotInstalled) {
		fmt.Fprintln(w, "the service is not installed")
		return nil
	}
	// systemd keeps running a unit whose file was removed: stop it first.
	if st == ks.StatusRunning {
		if err := c.Stop(); err != nil {
			return fmt.Errorf("stop the service before uninstalling it: %w", err)
		}
	}
	if err := c.Uninstall(); err != nil {
		return fmt.Errorf("uninstall the %s service: %w", c.Platform(), err)
	}
	fmt.Fprintf(w, "uninstalled the %s service (%s); its config and data dir are kept\n", Name, c.Platform())
	return nil
}

// errNotInstalledHint is what start and restart say about a missing service.
var errNotInstalledHint = fmt.Errorf("%w: run `tentacle install` first", ks.ErrNotInstalled)

// Start starts the service; a running one is left alone.
func Start(c Controller, w io.Writer) error {
	st, err := c.Status()
	switch {
	case errors.Is(err, ks.ErrNotInstalled):
		return errNotInstalledHint
	case err == nil && st == ks.StatusRunning:
		fmt.Fprintln(w, "the service is already running")
		return nil
	}
	if err := c.Start(); err != nil {
		return fmt.Errorf("start the service: %w", err)
	}
	fmt.Fprintf(w, "started the %s service\n", Name)
	return nil
}

// Stop stops the service; a stopped or missing one is not an error.
func Stop(c Controller, w io.Writer) error {
	st, err := c.Status()
	switch {
	case errors.Is(err, ks.ErrNotInstalled):
		fmt.Fprintln(w, "the service is not installed")
		return nil
	case err == nil && st == ks.StatusStopped:
		fmt.Fprintln(w, "the service is not running")
		return nil
	}
	if err := c.Stop(); err != nil {
		return fmt.Errorf("stop the service: %w", err)
	}
	fmt.Fprintf(w, "stopped the %s service\n", Name)
	return nil
}

// Restart restarts the service, or starts it when it is stopped.
func Restart(c Controller, w io.Writer) error {
	if _, err := c.Status(); errors.Is(err, ks.ErrNotInstalled) {
		return errNotInstalledHint
	}
	if err := c.Restart(); err != nil {
		return fmt.Errorf("restart the service: %w", err)
	}
	fmt.Fprintf(w, "restarted the %s service\n", Name)
	return nil
}

// WriteStatus prints the service's state and the server the agent talks to
// (see Server). It needs no privileges beyond what Status needs.
func WriteStatus(w io.Writer, c Controller, server string) {
	st, err := c.Status()
	fmt.Fprintf(w, "service: %s (%s)\nserver:  %s\n", describe(st, err), c.Platform(), server)
}

func describe(st ks.Status, err error) string {
	switch {
	case errors.Is(err, ks.ErrNotInstalled):
		return "not installed"
	case err != nil:
		return "unknown: " + err.Error()
	case st == ks.StatusRunning:
		return "running"
	case st == ks.StatusStopped:
		return "stopped"
	default:
		return "unknown"
	}
}
