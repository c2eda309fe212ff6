package server

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tentacle-deploy/tentacle/internal/pki"
	"github.com/tentacle-deploy/tentacle/server/store"
)

// variablesKeyFile holds the key sensitive variables are sealed with, in
// the data directory. Losing it loses every sensitive value (docs/SECURITY.md).
const variablesKeyFile = "variables.key"

const (
	variablesKeyLen = 32 // AES-256
	sealVersion     = 1
)

// secretBox seals and opens the values of sensitive variables with AES-GCM.
// The associated data binds a sealed value to its application, name and
// scope: a sealed value copied to another variable (in the database, by
// someone with write access to it) fails to open instead of leaking there.
type secretBox struct {
	aead cipher.AEAD
}

// loadOrCreateSecretBox reads the key file in dir, creating it with a new
// random key on first start. It reports whether it created the key.
func loadOrCreateSecretBox(dir string) (*secretBox, bool, error) {
	path := filepath.Join(dir, variablesKeyFile)
	key, err := os.ReadFile(path)
	created := false
	if errors.Is(err, fs.ErrNotExist) {
		key = make([]byte, variablesKeyLen)
		if _, err := rand.Read(key); err != nil {
			return nil, false, fmt.Errorf("variables key: %w", err)
		}
		if err := pki.WriteFileAtomic(path, key, 0o600); err != nil {
			return nil, false, fmt.Errorf("variables key: %w", err)
		}
		created = true
	} else if err != nil {
		return nil, false, fmt.Errorf("variables key: %w", err)
	}
	if len(key) != variablesKeyLen {
		return nil, false, fmt.Errorf("variables key %s is %d bytes, want %d: restore the file from your backup of the data directory (sensitive variables cannot be opened without it)",
			path, len(key), variablesKeyLen)
	}
	box, err := newSecretBox(key)
	return box, created, err
}

func newSecretBox(key []byte) (*secretBox, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("variables key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("variables key: %w", err)
	}
	return &secretBox{aead: aead}, nil
}

// sealedAD is the associated data of a variable's sealed value: each field
// length-prefixed, so no two (application, name, scope) give the same bytes.
func sealedAD(app, name string, sc store.VariableScope) []byte {
	ad := []byte("tentacle variable v1")
	for _, f := range []string{app, name, sc.Environment, sc.Role, sc.Target} {
		ad = binary.BigEndian.AppendUint32(ad, uint32(len(f)))
		ad = append(ad, f...)
	}
	return ad
}

// seal returns version byte, random nonce and ciphertext.
func (b *secretBox) seal(app, name string, sc store.VariableScope, value string) ([]byte, error) {
	n := b.aead.NonceSize()
	out := make([]byte, 1+n, 1+n+len(value)+b.aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("seal variable %s: %w", name, err)
	}
	return b.aead.Seal(out, out[1:], []byte(value), sealedAD(app, name, sc)), nil
}

// open returns the value sealed for exactly this application, name and
// scope. Its error never holds any part of the value.
func (b *secretBox) open(app, name string, sc store.VariableScope, sealed []byte) (string, error) {
	n := b.aead.NonceSize()
	if len(sealed) < 1+n+b.aead.Overhead() || sealed[0] != sealVersion {
		return "", fmt.Errorf("sensitive variable %s of %q (%s): stored value is not a sealed value of this server: set it again with `tentaclectl var set --sensitive`",
			name, app, scopeString(sc))
	}
	plain, err := b.aead.Open(nil, sealed[1:1+n], sealed[1+n:], sealedAD(app, name, sc))
	if err != nil {
		return "", fmt.Errorf("sensitive variable %s of %q (%s): does not open with this server's %s (another key, or a value copied from another variable): restore the key from backup, or set the value again",
			name, app, scopeString(sc), variablesKeyFile)
	}
	return string(plain), nil
}
