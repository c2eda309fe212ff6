package pki

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
)

// WriteFileAtomic replaces path with data so that readers, and a restart
// after a crash, see the old file or the new one, never a torn mix: it writes
// a temporary file in the same directory, syncs it and renames it over path.
// perm is applied exactly, whatever the umask.
//
// On Windows, where permission bits mean nothing, an owner-only perm (see
// isPrivate) instead gets the file a protected DACL granting access only to
// SYSTEM and Administrators; other perms keep the ACL inherited from the
// directory. A private file is owner-only, or protected, from its creation,
// before any data is written, and the rename keeps that protection.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := createTemp(dir, "."+filepath.Base(path)+".tmp", perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// isPrivate reports whether perm grants nothing to group and others: such a
// file holds a secret, a private key, and on Windows gets a protected DACL.
func isPrivate(perm os.FileMode) bool {
	return perm.Perm()&0o077 == 0
}

// syncDir makes a rename in dir durable. It is best effort: Windows cannot
// open a directory for syncing (NTFS journals the rename itself) and some
// filesystems refuse it, and by then the new file is already in place.
func syncDir(dir string) {
	if runtime.GOOS == "windows" {
		return
	}
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

func fileExists(path string) (bool, error) {
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func encodePEM(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// decodePEM returns the one PEM block in data, whose type must be one of
// want (want[0] is the one named in errors). Blank space may follow it,
// nothing else: a second block would be ignored silently otherwise.
func decodePEM(data []byte, want ...string) (*pem.Block, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("not PEM")
	}
	if !slices.Contains(want, block.Type) {
		return nil, fmt.Errorf("PEM block is %q, want %q", block.Type, want[0])
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("data after the PEM block")
	}
	return block, nil
}

func readCertFile(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, err := decodePEM(data, "CERTIFICATE")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cert, nil
}

// readKeyFile reads a private key in PKCS#8, SEC 1 or PKCS#1 PEM: we write
// PKCS#8, the other two are what openssl writes for a CA brought along.
func readKeyFile(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, err := decodePEM(data, "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(block.Headers) != 0 {
		return nil, fmt.Errorf("%s: PEM headers present; encrypted keys are not supported", path)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: %T keys cannot sign", path, key)
	}
	return signer, nil
}
