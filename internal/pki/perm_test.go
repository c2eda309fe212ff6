package pki

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestIsPrivate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		perm os.FileMode
		want bool
	}{
		{0o600, true},
		{0o400, true},
		{0o700, true},
		{0o000, true},
		{0o640, false},
		{0o644, false},
		{0o604, false},
		{0o660, false},
		// Only the permission bits count, not the type or setuid bits.
		{os.ModeDir | 0o700, true},
		{os.ModeSetuid | 0o600, true},
	} {
		if got := isPrivate(tc.perm); got != tc.want {
			t.Errorf("isPrivate(%v) = %v, want %v", tc.perm, got, tc.want)
		}
	}
}

// TestCreateTempOwnerOnly checks that the temporary file is owner-only before
// anything is written to it, whatever the final perm: WriteFileAtomic only
// applies perm with Chmod afterwards, so a wider creation mode would leave a
// window in which a private key could be read by others.
func TestCreateTempOwnerOnly(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits; perm_windows_test.go checks the DACL")
	}
	dir := t.TempDir()
	for _, perm := range []os.FileMode{0o600, 0o644} {
		f, err := createTemp(dir, ".f.tmp", perm)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := f.Stat()
		_ = f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Dir(f.Name()) != dir {
			t.Errorf("perm %v: temporary file %s is not in %s", perm, f.Name(), dir)
		}
		if got := fi.Mode().Perm(); got&0o077 != 0 {
			t.Errorf("perm %v: temporary file created with mode %v, want owner-only", perm, got)
		}
	}
}

func TestRestrictDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	if err := RestrictDir(dir); err != nil {
		t.Fatal(err)
	}
	// On Unix RestrictDir leaves the mode to MkdirAll's 0700; it must not
	// change it behind the caller's back.
	wantMode(t, dir, 0o755)
	// The directory stays usable for the keys it is meant to hold.
	path := filepath.Join(dir, "k.key")
	if err := WriteFileAtomic(path, []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != "key" {
		t.Fatalf("read %q, %v; want %q", got, err, "key")
	}
}
