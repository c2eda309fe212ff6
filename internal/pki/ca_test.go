package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// newTestCA creates a CA in a fresh directory.
func newTestCA(t testing.TB) *CA {
	t.Helper()
	ca, created, err := LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Fatal("created = false for an empty directory")
	}
	return ca
}

func wantMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	if runtime.GOOS == "windows" {
		return // Windows has no Unix permission bits to check.
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %v, want %v", filepath.Base(path), got, want)
	}
}

func TestLoadOrCreateCA(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "pki")
	ca, created, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Error("first call: created = false")
	}
	wantMode(t, dir, 0o700)
	wantMode(t, filepath.Join(dir, "ca.key"), 0o600)
	wantMode(t, filepath.Join(dir, "ca.crt"), 0o644)

	c := ca.Cert
	if c.Subject.CommonName != "Tentacle CA" || !c.IsCA || !c.MaxPathLenZero {
		t.Errorf("CA certificate: CN %q, IsCA %v, MaxPathLenZero %v", c.Subject.CommonName, c.IsCA, c.MaxPathLenZero)
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", c.PublicKey)
	}
	if life := c.NotAfter.Sub(c.NotBefore); life < 3650*24*time.Hour {
		t.Errorf("CA valid for %v, want ten years", life)
	}

	again, created, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if created {
		t.Error("second call: created = true")
	}
	if again.Hash() != ca.Hash() || Fingerprint(again.Cert) != Fingerprint(ca.Cert) || !bytes.Equal(again.CertPEM, ca.CertPEM) {
		t.Errorf("reloaded CA differs: hash %s, want %s", again.Hash(), ca.Hash())
	}
	if !publicKeyMatches(again.Cert.PublicKey, again.Key) {
		t.Error("reloaded key does not match the certificate")
	}
}

func TestLoadOrCreateCARefuses(t *testing.T) {
	t.Parallel()
	other := newTestCA(t)
	otherKey, err := x509.MarshalPKCS8PrivateKey(other.Key)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string) // spoils a valid CA in dir
		want   string                         // {dir} stands for the directory
	}{
		{"key missing", func(t *testing.T, dir string) { remove(t, dir, "ca.key") },
			"found {dir}/ca.crt but not {dir}/ca.key: restore the key from a backup (a new CA would mean enrolling every agent again)"},
		{"cert missing", func(t *testing.T, dir string) { remove(t, dir, "ca.crt") },
			"found {dir}/ca.key but not {dir}/ca.crt: restore the certificate from a backup, or remove {dir}/ca.key to create a new CA (every agent must then enroll again)"},
		{"key of another CA", func(t *testing.T, dir string) { write(t, dir, "ca.key", encodePEM("PRIVATE KEY", otherKey)) },
			"{dir}/ca.key is not the key of {dir}/ca.crt"},
		{"key not PEM", func(t *testing.T, dir string) { write(t, dir, "ca.key", []byte("oops")) },
			"{dir}/ca.key: not PEM"},
		{"certificate where the key belongs", func(t *testing.T, dir string) { write(t, dir, "ca.key", other.CertPEM) },
			`{dir}/ca.key: PEM block is "CERTIFICATE", want "PRIVATE KEY"`},
		{"two certificates", func(t *testing.T, dir string) { write(t, dir, "ca.crt", append(other.CertPEM, other.CertPEM...)) },
			"{dir}/ca.crt: data after the PEM block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if _, _, err := LoadOrCreateCA(dir); err != nil {
				t.Fatal(err)
			}
			tt.damage(t, dir)
			_, _, err := LoadOrCreateCA(dir)
			want := strings.ReplaceAll(tt.want, "{dir}/", dir+string(filepath.Separator))
			if err == nil || err.Error() != want {
				t.Errorf("error %v\nwant %s", err, want)
			}
		})
	}
}

func remove(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	if err := WriteFileAtomic(filepath.Join(dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSPKIHashMatchesOpenSSL checks the hash against the one computed by
// kubeadm's documented openssl pipeline (see testdata/README.md).
func TestSPKIHashMatchesOpenSSL(t *testing.T) {
	t.Parallel()
	cert, err := readCertFile(filepath.Join("testdata", "openssl-ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	const want = "sha256:fd02c78489dbe59587fc78bbb977d2016e4c960e6a4e02c2023b027c245cf9d8"
	if got := SPKIHash(cert); got != want {
		t.Errorf("SPKIHash = %s, want %s", got, want)
	}
	sum := sha256.Sum256(cert.Raw)
	if got := Fingerprint(cert); got != hex.EncodeToString(sum[:]) {
		t.Errorf("Fingerprint = %s", got)
	}
}

func TestCAPoolFromPEM(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	leaf, err := LoadOrCreateServerCert(t.TempDir(), ca, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	leafPEM := encodePEM("CERTIFICATE", leaf.Leaf.Raw)
	tests := []struct {
		name, in, want string
	}{
		{"one CA", string(ca.CertPEM), ""},
		{"two CAs", string(ca.CertPEM) + string(newTestCA(t).CertPEM), ""},
		{"empty", "", "CA bundle: no PEM certificate"},
		{"server certificate", string(leafPEM), `CA bundle: certificate 1 ("Tentacle server") is not a CA`},
		{"key", "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n", `CA bundle: PEM block 1 is "PRIVATE KEY", want "CERTIFICATE"`},
		{"junk after", string(ca.CertPEM) + "junk", "CA bundle: data after certificate 1 is not PEM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := CAPoolFromPEM([]byte(tt.in))
			if got := errString(err); got != tt.want {
				t.Errorf("error %q, want %q", got, tt.want)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestWriteFileAtomic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	for _, step := range []struct {
		data string
		perm os.FileMode
	}{{"first", 0o640}, {"second", 0o600}} {
		if err := WriteFileAtomic(path, []byte(step.data), step.perm); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != step.data {
			t.Fatalf("read %q, %v; want %q", got, err, step.data)
		}
		wantMode(t, path, step.perm)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want 1 (a temporary file left behind?)", len(entries))
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "f"), nil, 0o600); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
}
