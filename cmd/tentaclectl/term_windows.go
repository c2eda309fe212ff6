//go:build windows

package main

import (
	"os"

	"golang.org/x/sys/windows"
)

// terminalSize reports the size of the console window f writes to, or ok
// false when f is not a console or the console cannot take the ANSI escape
// sequences the progress view moves the cursor with.
func terminalSize(f *os.File) (width, height int, ok bool) {
	h := windows.Handle(f.Fd())
	var mode uint32
	if err := windows.GetConsoleMode(h, &mode); err != nil {
		return 0, 0, false
	}
	if mode&windows.ENABLE_VIRTUAL_TERMINAL_PROCESSING == 0 {
		if err := windows.SetConsoleMode(h, mode|windows.ENABLE_VIRTUAL_TERMINAL_PROCESSING); err != nil {
			return 0, 0, false // an old console: no escape sequences
		}
	}
	var info windows.ConsoleScreenBufferInfo
	if err := windows.GetConsoleScreenBufferInfo(h, &info); err != nil {
		return 0, 0, false
	}
	w := info.Window
	return int(w.Right-w.Left) + 1, int(w.Bottom-w.Top) + 1, true
}
