//go:build windows

package service

import (
	"io"
	"os"
	"path/filepath"
)

// LogOutput is where the agent logs: <data_dir>\tentacle.log, and the
// console too when it runs in the foreground. A service's stderr goes
// nowhere on Windows.
func LogOutput(dataDir string, interactive bool) (w io.Writer, closeLog func() error, err error) {
	f, err := openLogFile(filepath.Join(dataDir, LogFileName), maxLogSize)
	if err != nil {
		return nil, nil, err
	}
	if interactive {
		return io.MultiWriter(os.Stderr, f), f.Close, nil
	}
	return f, f.Close, nil
}
