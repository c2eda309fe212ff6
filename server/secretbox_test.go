package server

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tentacle-deploy/tentacle/server/store"
)

func TestSecretBoxKeyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	box, created, err := loadOrCreateSecretBox(dir)
	if err != nil || !created {
		t.Fatalf("first start: created=%v, %v", created, err)
	}
	path := filepath.Join(dir, variablesKeyFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 32 {
		t.Errorf("key file is %d bytes, want 32", fi.Size())
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	sc := store.VariableScope{Environment: "prod"}
	sealed, err := box.seal("web", "DB_PASSWORD", sc, "hunter2-secret")
	if err != nil {
		t.Fatal(err)
	}
	// A restart reads the same key and opens what the first start sealed.
	again, created, err := loadOrCreateSecretBox(dir)
	if err != nil || created {
		t.Fatalf("second start: created=%v, %v", created, err)
	}
	if got, err := again.open("web", "DB_PASSWORD", sc, sealed); err != nil || got != "hunter2-secret" {
		t.Fatalf("open after restart = %q, %v", got, err)
	}
}

func TestSecretBoxRefusesAWrongLengthKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, variablesKeyFile)
	if err := os.WriteFile(path, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := loadOrCreateSecretBox(dir)
	want := "variables key " + path + " is 6 bytes, want 32: restore the file from your backup of the data directory (sensitive variables cannot be opened without it)"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	// The bad file is left as it was, not replaced by a new key.
	if b, _ := os.ReadFile(path); string(b) != "short\n" {
		t.Errorf("key file now %q", b)
	}
}

func TestSecretBoxBindsValueToVariable(t *testing.T) {
	t.Parallel()
	box, _, err := loadOrCreateSecretBox(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	prod := store.VariableScope{Environment: "prod"}
	sealed, err := box.seal("web", "DB_PASSWORD", prod, "hunter2-secret")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("hunter2")) {
		t.Fatal("sealed value holds the value in clear")
	}
	other, _ := box.seal("web", "DB_PASSWORD", prod, "hunter2-secret")
	if bytes.Equal(sealed, other) {
		t.Error("two seals of one value are equal: the nonce is not random")
	}
	for _, tc := range []struct {
		app, name string
		sc        store.VariableScope
	}{
		{"api", "DB_PASSWORD", prod},
		{"web", "OTHER", prod},
		{"web", "DB_PASSWORD", store.VariableScope{}},
		{"web", "DB_PASSWORD", store.VariableScope{Environment: "test"}},
		{"web", "DB_PASSWORD", store.VariableScope{Environment: "prod", Role: "x"}},
	} {
		_, err := box.open(tc.app, tc.name, tc.sc, sealed)
		if err == nil {
			t.Errorf("value sealed for web/DB_PASSWORD/prod opens as %s/%s/%+v", tc.app, tc.name, tc.sc)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "restore the key from backup, or set the value again") {
			t.Errorf("error %q", err)
		}
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	if _, err := box.open("web", "DB_PASSWORD", prod, tampered); err == nil {
		t.Error("a tampered value opens")
	}
	_, err = box.open("web", "DB_PASSWORD", prod, []byte("plain"))
	want := `sensitive variable DB_PASSWORD of "web" (environment "prod"): stored value is not a sealed value of this server: set it again with ` + "`tentaclectl var set --sensitive`"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}

// FuzzSecretBoxOpen feeds stored bytes to open: whatever the database
// holds, open fails cleanly, and only what seal made opens.
func FuzzSecretBoxOpen(f *testing.F) {
	box, err := newSecretBox(bytes.Repeat([]byte{7}, variablesKeyLen))
	if err != nil {
		f.Fatal(err)
	}
	sealed, _ := box.seal("web", "P", store.VariableScope{}, "value")
	f.Add(sealed, "value")
	f.Add([]byte{1}, "")
	f.Add([]byte{}, "x")
	f.Fuzz(func(t *testing.T, b []byte, value string) {
		// Only the seed was sealed for web/P/no scope (in this process or
		// in the one that made the corpus): nothing else opens.
		if v, err := box.open("web", "P", store.VariableScope{}, b); err == nil && v != "value" {
			t.Fatalf("bytes %x not made by seal open as %q", b, v)
		}
		s, err := box.seal("web", "P", store.VariableScope{Role: "r"}, value)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := box.open("web", "P", store.VariableScope{Role: "r"}, s); err != nil || got != value {
			t.Fatalf("round trip of %q: %q, %v", value, got, err)
		}
	})
}
