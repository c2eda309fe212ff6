package pki

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// CA rotation happens in three steps, each taking effect when the server
// next starts:
//
//  1. BeginRotation creates ca-next.{crt,key}. The server trusts client
//     certificates of both CAs, signs new ones with the next CA, gives agents
//     both CAs and asks them to renew; its own certificate is still from the
//     active CA, which agents already trust.
//  2. FinishRotation makes the next CA the active one (ca-old.crt keeps the
//     old certificate, its key is deleted); the server certificate is
//     reissued from the new CA, which agents trust since step 1.
//  3. EndRotation removes ca-old.crt: certificates of the old CA are refused.
const (
	nextCertFile = "ca-next.crt"
	nextKeyFile  = "ca-next.key"
	oldCertFile  = "ca-old.crt"
)

// CASet is the server's CAs, during a rotation or not.
type CASet struct {
	Active *CA
	// Next is set between BeginRotation and FinishRotation.
	Next *CA
	// Old is set between FinishRotation and EndRotation: trusted, never signs.
	Old *x509.Certificate
}

// LoadCASet loads the CAs in dir, creating the active one on first start.
func LoadCASet(dir string) (CASet, bool, error) {
	active, created, err := LoadOrCreateCA(dir)
	if err != nil {
		return CASet{}, false, err
	}
	set := CASet{Active: active}
	if ok, err := fileExists(filepath.Join(dir, nextCertFile)); err != nil {
		return CASet{}, false, err
	} else if ok {
		if set.Next, err = loadCA(filepath.Join(dir, nextCertFile), filepath.Join(dir, nextKeyFile), time.Now()); err != nil {
			return CASet{}, false, fmt.Errorf("next CA: %w", err)
		}
	}
	if ok, err := fileExists(filepath.Join(dir, oldCertFile)); err != nil {
		return CASet{}, false, err
	} else if ok {
		if set.Old, err = readCertFile(filepath.Join(dir, oldCertFile)); err != nil {
			return CASet{}, false, fmt.Errorf("old CA: %w", err)
		}
	}
	return set, created, nil
}

// Signer is the CA new client certificates are signed with.
func (s CASet) Signer() *CA {
	if s.Next != nil {
		return s.Next
	}
	return s.Active
}

// Pool trusts every CA of the set.
func (s CASet) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	for _, c := range s.certs() {
		pool.AddCert(c)
	}
	return pool
}

// Bundle is the PEM bundle agents trust, active CA first.
func (s CASet) Bundle() []byte {
	var b bytes.Buffer
	for _, c := range s.certs() {
		b.Write(encodePEM("CERTIFICATE", c.Raw))
	}
	return b.Bytes()
}

func (s CASet) certs() []*x509.Certificate {
	out := []*x509.Certificate{s.Active.Cert}
	if s.Next != nil {
		out = append(out, s.Next.Cert)
	}
	if s.Old != nil {
		out = append(out, s.Old)
	}
	return out
}

// BeginRotation creates the next CA in dir.
func BeginRotation(dir string) (*CA, error) {
	set, _, err := LoadCASet(dir)
	if err != nil {
		return nil, err
	}
	if set.Next != nil {
		return nil, errors.New("a CA rotation is already in progress: finish it first")
	}
	if set.Old != nil {
		return nil, errors.New("the previous rotation has not ended: run end-rotation first (once every agent has renewed)")
	}
	next, keyPEM, err := newCA(time.Now())
	if err != nil {
		return nil, err
	}
	if err := WriteFileAtomic(filepath.Join(dir, nextKeyFile), keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := WriteFileAtomic(filepath.Join(dir, nextCertFile), next.CertPEM, 0o644); err != nil {
		return nil, err
	}
	return next, nil
}

// FinishRotation makes the next CA active. It can be run again after a
// crash part-way.
func FinishRotation(dir string) error {
	p := func(name string) string { return filepath.Join(dir, name) }
	next, err := readCertFile(p(nextCertFile))
	if errors.Is(err, os.ErrNotExist) {
		return errors.New("no CA rotation in progress: run begin-rotation first")
	}
	if err != nil {
		return err
	}
	active, err := readCertFile(p(caCertFile))
	if err != nil {
		return err
	}
	if !active.Equal(next) {
		if err := WriteFileAtomic(p(oldCertFile), encodePEM("CERTIFICATE", active.Raw), 0o644); err != nil {
			return err
		}
	}
	// The next key replaces the old one (the old CA never signs again),
	// then the certificate follows; a crash between the two is finished by
	// running this again, since ca-next.crt is still there.
	if _, err := os.Stat(p(nextKeyFile)); err == nil {
		if err := os.Rename(p(nextKeyFile), p(caKeyFile)); err != nil {
			return err
		}
	}
	return os.Rename(p(nextCertFile), p(caCertFile))
}

// EndRotation stops trusting the old CA.
func EndRotation(dir string) error {
	err := os.Remove(filepath.Join(dir, oldCertFile))
	if errors.Is(err, os.ErrNotExist) {
		return errors.New("no finished rotation to end")
	}
	return err
}

// IssuedBy reports whether cert was signed by ca.
func IssuedBy(cert *x509.Certificate, ca *x509.Certificate) bool {
	return cert.CheckSignatureFrom(ca) == nil
}
