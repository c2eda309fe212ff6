//go:build windows

package pki

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unsafe"

	"golang.org/x/sys/windows"
)

// fileAllAccess is FILE_ALL_ACCESS, the mask SDDL's "FA" stands for, which
// x/sys/windows does not define.
const fileAllAccess = windows.STANDARD_RIGHTS_REQUIRED | windows.SYNCHRONIZE | 0x1ff

// ace is the part of an access control entry the tests compare.
type ace struct {
	typ   uint8
	flags uint8
	mask  windows.ACCESS_MASK
	sid   string
}

// readDACL reads back the DACL of path as Windows stored it, and whether it
// is protected from inheritance.
func readDACL(t *testing.T, path string) (protected bool, aces []ace) {
	t.Helper()
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatalf("GetNamedSecurityInfo(%s): %v", path, err)
	}
	if sd == nil {
		t.Fatalf("%s has no security descriptor", path)
	}
	control, _, err := sd.Control()
	if err != nil {
		t.Fatal(err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if dacl == nil {
		t.Fatalf("%s has a null DACL, which grants everyone everything", path)
	}
	for i := range uint32(dacl.AceCount) {
		var e *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &e); err != nil {
			t.Fatal(err)
		}
		sid := (*windows.SID)(unsafe.Pointer(&e.SidStart))
		aces = append(aces, ace{e.Header.AceType, e.Header.AceFlags, e.Mask, sid.String()})
	}
	return control&windows.SE_DACL_PROTECTED != 0, aces
}

// wantPrivateDACL fails unless path has a protected DACL of exactly two
// entries, full control for SYSTEM and for Administrators, with flags.
func wantPrivateDACL(t *testing.T, path string, flags uint8) {
	t.Helper()
	protected, got := readDACL(t, path)
	if !protected {
		t.Errorf("%s: DACL not protected from inheritance", filepath.Base(path))
	}
	want := []ace{
		{windows.ACCESS_ALLOWED_ACE_TYPE, flags, fileAllAccess, "S-1-5-18"},
		{windows.ACCESS_ALLOWED_ACE_TYPE, flags, fileAllAccess, "S-1-5-32-544"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: DACL %+v, want %+v", filepath.Base(path), got, want)
	}
}

// TestCreateTempPrivateDACL checks the protection is there before a byte of
// the key is written, not applied afterwards.
func TestCreateTempPrivateDACL(t *testing.T) {
	t.Parallel()
	f, err := createTemp(t.TempDir(), ".k.tmp", 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	wantPrivateDACL(t, f.Name(), 0)
}

func TestWriteFileAtomicPrivateDACL(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "k.key")
	// The second write replaces the file: the new one must be protected too.
	for _, data := range []string{"first", "second"} {
		if err := WriteFileAtomic(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		wantPrivateDACL(t, path, 0)
		if got, err := os.ReadFile(path); err != nil || string(got) != data {
			t.Fatalf("read %q, %v; want %q", got, err, data)
		}
	}
}

// TestWriteFileAtomicPublicDACL checks that files others may read, such as
// certificates, keep the ACL they inherit from their directory.
func TestWriteFileAtomicPublicDACL(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "k.crt")
	if err := WriteFileAtomic(path, []byte("cert"), 0o644); err != nil {
		t.Fatal(err)
	}
	protected, aces := readDACL(t, path)
	if protected {
		t.Error("DACL of a 0644 file is protected, want the inherited one")
	}
	if !slices.ContainsFunc(aces, func(a ace) bool { return a.flags&windows.INHERITED_ACE != 0 }) {
		t.Errorf("DACL %+v has no inherited entry", aces)
	}
}

func TestRestrictDirDACL(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := RestrictDir(dir); err != nil {
		t.Fatal(err)
	}
	wantPrivateDACL(t, dir, windows.OBJECT_INHERIT_ACE|windows.CONTAINER_INHERIT_ACE)

	// A file created later in the directory, with no ACL of its own, inherits
	// the restriction.
	path := filepath.Join(dir, "state")
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	protected, got := readDACL(t, path)
	if protected {
		t.Error("file in the directory: DACL protected, want inherited")
	}
	want := []ace{
		{windows.ACCESS_ALLOWED_ACE_TYPE, windows.INHERITED_ACE, fileAllAccess, "S-1-5-18"},
		{windows.ACCESS_ALLOWED_ACE_TYPE, windows.INHERITED_ACE, fileAllAccess, "S-1-5-32-544"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("file in the directory: DACL %+v, want %+v", got, want)
	}

	if err := RestrictDir(filepath.Join(dir, "missing")); err == nil {
		t.Error("RestrictDir of a missing directory succeeded")
	}
}
