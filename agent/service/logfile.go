package service

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// LogFileName is the agent's log file in the data dir on Windows, where a
// service has no stderr that anything collects.
const LogFileName = "tentacle.log"

// maxLogSize is when openLogFile starts a new file, keeping one old one.
const maxLogSize = 50 << 20

// openLogFile opens path for appending; a file already larger than
// maxSize is first renamed to path.1 (replacing it), so the log is
// bounded without a rotation library.
func openLogFile(path string, maxSize int64) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Size() > maxSize {
		if err := os.Rename(path, path+".1"); err != nil {
			return nil, fmt.Errorf("log file: rotate: %w", err)
		}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("log file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	return f, nil
}

// nopCloser is LogOutput's close when nothing was opened.
func nopCloser() error { return nil }
