//go:build unix

package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// terminalSize reports the size of the terminal f is, or ok false when f is
// not a terminal (a pipe, a file, a CI log).
func terminalSize(f *os.File) (width, height int, ok bool) {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0, 0, false
	}
	return int(ws.Col), int(ws.Row), true
}
