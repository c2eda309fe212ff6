package service

import (
	"errors"
	"io/fs"
	"os"

	ks "github.com/kardianos/service"
)

// NewController wraps a kardianos service for the commands.
func NewController(s ks.Service) Controller {
	if s.Platform() == "unix-systemv" {
		return sysvController{Service: s, script: "/etc/init.d/" + Name}
	}
	return s
}

// sysvController fixes kardianos v1.2.4's SysV Status, which returns the
// bare "exit status 1" of `service tentacle status` both for a missing
// service and for a stopped one (its init script exits 1 when stopped).
type sysvController struct {
	ks.Service
	script string
}

func (s sysvController) Status() (ks.Status, error) {
	st, err := s.Service.Status()
	if err == nil || errors.Is(err, ks.ErrNotInstalled) {
		return st, err
	}
	if _, statErr := os.Stat(s.script); errors.Is(statErr, fs.ErrNotExist) {
		return ks.StatusUnknown, ks.ErrNotInstalled
	}
	return ks.StatusStopped, nil
}
