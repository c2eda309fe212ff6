package pki

import (
	"bytes"
	"encoding/pem"
	"strings"
	"testing"
	"time"
)

func FuzzParseJoinToken(f *testing.F) {
	tok, err := NewJoinToken(testCAHash)
	if err != nil {
		f.Fatal(err)
	}
	s := tok.String()
	for _, seed := range []string{
		s, " " + s + "\n", "", "TNT1...", "TNT2." + s[5:], strings.ToUpper(s), s[:len(s)-1], s + ".", "tntadm_" + s,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		tok, err := ParseJoinToken(in)
		if err == nil {
			if got := tok.String(); got != strings.TrimSpace(in) {
				t.Fatalf("String() = %q, want %q", got, strings.TrimSpace(in))
			}
			again, err := ParseJoinToken(tok.String())
			if err != nil || again != tok {
				t.Fatalf("round trip: %+v, %v; want %+v", again, err, tok)
			}
			return
		}
		if !strings.HasPrefix(err.Error(), "join token: ") {
			t.Fatalf("error %q lacks the \"join token: \" prefix", err)
		}
		// The error may depend on the secret's length and alphabet, never on
		// its text: the same error must come back with the secret masked.
		parts := strings.Split(strings.TrimSpace(in), ".")
		if len(parts) != 4 {
			return
		}
		masked := []byte(parts[2])
		for i, c := range masked {
			if strings.IndexByte(base32Alphabet, c) >= 0 {
				masked[i] = 'a'
			} else {
				masked[i] = '#'
			}
		}
		parts[2] = string(masked)
		if _, err2 := ParseJoinToken(strings.Join(parts, ".")); errString(err2) != err.Error() {
			t.Fatalf("error depends on the secret: %q, masked %q", err, errString(err2))
		}
	})
}

func FuzzParseCSR(f *testing.F) {
	ca := newTestCA(f)
	_, csrPEM, err := NewKeyAndCSR("fuzz-agent")
	if err != nil {
		f.Fatal(err)
	}
	block, _ := pem.Decode(csrPEM)
	for _, seed := range [][]byte{
		csrPEM,
		readTestdata(f, "openssl-p256.csr"),
		readTestdata(f, "openssl-ed25519.csr"),
		readTestdata(f, "openssl-rsa2048.csr"),
		readTestdata(f, "openssl-rsa1024.csr"),
		bytes.Replace(csrPEM, []byte("CERTIFICATE REQUEST"), []byte("NEW CERTIFICATE REQUEST"), 2),
		block.Bytes,
		ca.CertPEM,
		nil,
		[]byte("-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----\n"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		csr, err := ParseCSR(in)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "certificate request: ") {
				t.Fatalf("error %q lacks the \"certificate request: \" prefix", err)
			}
			return
		}
		if err := csr.CheckSignature(); err != nil {
			t.Fatalf("accepted a request whose signature does not verify: %v", err)
		}
		// Whatever ParseCSR accepts, SignCSR must sign, and only as told.
		_, cert, err := ca.SignCSR(in, "fuzz-target", time.Hour)
		if err != nil {
			t.Fatalf("ParseCSR accepted what SignCSR refuses: %v", err)
		}
		if cert.Subject.String() != "CN=fuzz-target" || len(cert.DNSNames)+len(cert.IPAddresses)+len(cert.URIs)+len(cert.EmailAddresses) != 0 {
			t.Fatalf("certificate for %q with SANs %v %v", cert.Subject, cert.DNSNames, cert.IPAddresses)
		}
	})
}
