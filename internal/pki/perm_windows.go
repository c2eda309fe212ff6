//go:build windows

package pki

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/windows"
)

// Windows ignores permission bits, so private keys are protected by ACLs
// instead: full control (FA) for LocalSystem (S-1-5-18), which the agent's
// service runs as, and for the built-in Administrators group (S-1-5-32-544),
// and nothing for anyone else. "P" marks the DACL protected, so that nothing
// is inherited from the parent: under C:\ProgramData, for one, every user
// may read what inherits the default ACL. A directory's ACEs are also
// inherited by the files and directories created in it later (OICI).
const (
	privateFileSDDL = "D:P(A;;FA;;;S-1-5-18)(A;;FA;;;S-1-5-32-544)"
	privateDirSDDL  = "D:P(A;OICI;FA;;;S-1-5-18)(A;OICI;FA;;;S-1-5-32-544)"
)

// createTemp creates a new file in dir whose name starts with prefix, for
// WriteFileAtomic to fill. For a private perm the file is created already
// carrying the protected DACL, rather than given it after os.CreateTemp:
// Windows checks access when a file is opened, not at each read, so another
// process that opened the file while it still had the inherited ACL could
// read the key written later through that handle.
func createTemp(dir, prefix string, perm os.FileMode) (*os.File, error) {
	if !isPrivate(perm) {
		return os.CreateTemp(dir, prefix+"*")
	}
	// With rand.Text's 128 random bits or more a name collision means
	// something is wrong, so CREATE_NEW fails it rather than retrying.
	name := filepath.Join(dir, prefix+rand.Text())
	sd, err := windows.SecurityDescriptorFromString(privateFileSDDL)
	if err != nil {
		return nil, &os.PathError{Op: "createtemp", Path: name, Err: err}
	}
	namep, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return nil, &os.PathError{Op: "createtemp", Path: name, Err: err}
	}
	sa := windows.SecurityAttributes{
		Length:             uint32(unsafe.Sizeof(windows.SecurityAttributes{})),
		SecurityDescriptor: sd,
		InheritHandle:      0, // not passed on to child processes, as with os.CreateTemp
	}
	// Access and sharing mode are those os.CreateTemp uses. The agent runs
	// as SYSTEM or an administrator, to whom the DACL grants full control.
	h, err := windows.CreateFile(namep,
		windows.GENERIC_READ|windows.GENERIC_WRITE,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE,
		&sa, windows.CREATE_NEW, windows.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		return nil, &os.PathError{Op: "createtemp", Path: name, Err: err}
	}
	return os.NewFile(uintptr(h), name), nil
}

// RestrictDir limits access to the directory path to SYSTEM and
// Administrators, with a protected DACL that files and directories created
// in it inherit, so that it can hold the agent's keys and state. Windows
// propagates the change to the entries already in it that inherit their ACL;
// those with a protected DACL of their own, such as private keys, keep it.
func RestrictDir(path string) error {
	sd, err := windows.SecurityDescriptorFromString(privateDirSDDL)
	if err != nil {
		return fmt.Errorf("restrict %s: %w", path, err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("restrict %s: %w", path, err)
	}
	// A nil DACL would grant everyone everything: never pass one on.
	if dacl == nil {
		return fmt.Errorf("restrict %s: no DACL in the security descriptor", path)
	}
	// PROTECTED_DACL_SECURITY_INFORMATION is what stops inheritance here:
	// SetNamedSecurityInfo ignores the descriptor's own protected flag.
	err = windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION,
		nil, nil, dacl, nil)
	if err != nil {
		return fmt.Errorf("restrict %s: %w", path, err)
	}
	return nil
}
