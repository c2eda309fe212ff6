//go:build !windows

package pki

import "os"

// createTemp creates a new file in dir whose name starts with prefix, for
// WriteFileAtomic to fill. os.CreateTemp creates it with mode 0600, so it is
// owner-only from the start: a private key is never readable by others, even
// before WriteFileAtomic applies perm with Chmod.
func createTemp(dir, prefix string, _ os.FileMode) (*os.File, error) {
	return os.CreateTemp(dir, prefix+"*")
}

// RestrictDir limits access to the directory path to the service's own
// principals, so that it can hold private keys. On Unix it does nothing:
// creating the directory with os.MkdirAll(path, 0o700) already does that,
// and the keys inside are written 0600 anyway.
func RestrictDir(path string) error {
	return nil
}
