//go:build !windows

package service

import (
	"io"
	"os"
)

// LogOutput is where the agent logs: stderr, in the foreground and under
// systemd (journald), SysV or OpenRC (the library's scripts redirect it).
func LogOutput(dataDir string, interactive bool) (w io.Writer, closeLog func() error, err error) {
	return os.Stderr, nopCloser, nil
}
