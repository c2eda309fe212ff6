//go:build windows

package docker

import "golang.org/x/sys/windows"

// diskSpace returns the free (to the agent's user) and total bytes of the
// volume holding path; 0, 0 when it cannot be read.
func diskSpace(path string) (free, total uint64) {
	if path == "" {
		return 0, 0
	}
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return 0, 0
	}
	var avail, all, allFree uint64
	if err := windows.GetDiskFreeSpaceEx(p, &avail, &all, &allFree); err != nil {
		return 0, 0
	}
	return avail, all
}
