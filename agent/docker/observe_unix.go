//go:build unix

package docker

import "golang.org/x/sys/unix"

// diskSpace returns the free (to unprivileged users, as the engine's
// containers see it) and total bytes of the filesystem holding path; 0, 0
// when it cannot be read.
func diskSpace(path string) (free, total uint64) {
	if path == "" {
		return 0, 0
	}
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, 0
	}
	bsize := uint64(st.Bsize) // int64 on linux, uint32 on darwin
	return uint64(st.Bavail) * bsize, uint64(st.Blocks) * bsize
}
