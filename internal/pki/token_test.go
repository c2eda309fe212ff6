package pki

import (
	"bytes"
	"crypto/sha256"
	"regexp"
	"strings"
	"testing"
)

const testCAHash = "sha256:fd02c78489dbe59587fc78bbb977d2016e4c960e6a4e02c2023b027c245cf9d8"

func TestJoinTokenRoundTrip(t *testing.T) {
	t.Parallel()
	tok, err := NewJoinToken(testCAHash)
	if err != nil {
		t.Fatal(err)
	}
	s := tok.String()
	if !regexp.MustCompile(`^TNT1\.[a-z2-7]{6}\.[a-z2-7]{26}\.[0-9a-f]{64}$`).MatchString(s) {
		t.Fatalf("token %q has the wrong shape", s)
	}
	if !strings.HasSuffix(s, "."+strings.TrimPrefix(testCAHash, "sha256:")) {
		t.Errorf("token %q does not end with the CA hash", s)
	}
	for _, in := range []string{s, "  " + s + "\r\n", "\t" + s} {
		got, err := ParseJoinToken(in)
		if err != nil {
			t.Fatalf("ParseJoinToken(%q): %v", in, err)
		}
		if got != tok {
			t.Errorf("ParseJoinToken(%q) = %+v, want %+v", in, got, tok)
		}
	}
	other, err := NewJoinToken(testCAHash)
	if err != nil {
		t.Fatal(err)
	}
	if other.ID == tok.ID || other.Secret == tok.Secret {
		t.Error("two new tokens share an id or a secret")
	}
}

func TestNewJoinTokenRejectsBadCAHash(t *testing.T) {
	t.Parallel()
	for _, h := range []string{"", "fd02c78489dbe59587fc78bbb977d2016e4c960e6a4e02c2023b027c245cf9d8", "sha256:FD02", "sha1:00"} {
		_, err := NewJoinToken(h)
		want := `join token: CA hash "` + h + `" is not "sha256:" and 64 lower case hex characters`
		if got := errString(err); got != want {
			t.Errorf("NewJoinToken(%q): error %q, want %q", h, got, want)
		}
	}
}

func TestParseJoinTokenErrors(t *testing.T) {
	t.Parallel()
	const (
		id     = "abcdef"
		secret = "secretsecretsecretsecret23" // recognisable, so a leak shows
		hash   = "fd02c78489dbe59587fc78bbb977d2016e4c960e6a4e02c2023b027c245cf9d8"
	)
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "join token: empty"},
		{"blank", " \n\t", "join token: empty"},
		{"three parts", "TNT1." + id + "." + secret, `join token: 3 parts separated by ".", want 4 (TNT1.<id>.<secret>.<CA hash>)`},
		{"five parts", "TNT1." + id + "." + secret + "." + hash + ".x", `join token: 5 parts separated by ".", want 4 (TNT1.<id>.<secret>.<CA hash>)`},
		{"newer version", "TNT2." + id + "." + secret + "." + hash, "join token: version TNT2 is not supported, want TNT1 (the agent may be older than the server)"},
		{"another kind of token", "K10." + id + "." + secret + "." + hash, `join token: does not start with "TNT1."`},
		{"lower case version", "tnt1." + id + "." + secret + "." + hash, `join token: does not start with "TNT1."`},
		{"space inside", "TNT1. " + id + "." + secret + "." + hash, "join token: id is 7 characters, want 6"},
		{"short id", "TNT1.abcde." + secret + "." + hash, "join token: id is 5 characters, want 6"},
		{"id with 0", "TNT1.abcde0." + secret + "." + hash, "join token: id has a character outside a-z and 2-7"},
		{"short secret", "TNT1." + id + "." + secret[1:] + "." + hash, "join token: secret is 25 characters, want 26"},
		{"upper case secret", "TNT1." + id + "." + strings.ToUpper(secret) + "." + hash, "join token: secret has a character outside a-z and 2-7"},
		{"secret with 1", "TNT1." + id + "." + secret[1:] + "1." + hash, "join token: secret has a character outside a-z and 2-7"},
		{"hash with prefix", "TNT1." + id + "." + secret + ".sha256:" + hash, "join token: CA hash is 71 characters, want 64"},
		{"short hash", "TNT1." + id + "." + secret + "." + hash[2:], "join token: CA hash is 62 characters, want 64"},
		{"upper case hash", "TNT1." + id + "." + secret + "." + strings.ToUpper(hash), "join token: CA hash has a character outside 0-9 and a-f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseJoinToken(tt.in)
			if got := errString(err); got != tt.want {
				t.Errorf("error %q\nwant  %q", got, tt.want)
			}
			if err != nil && strings.Contains(strings.ToLower(err.Error()), secret[:12]) {
				t.Errorf("error %q contains the secret", err)
			}
		})
	}
}

func TestHashSecret(t *testing.T) {
	t.Parallel()
	a, b := HashSecret("aaaa"), HashSecret("aaab")
	if len(a) != sha256.Size || bytes.Equal(a, b) || !bytes.Equal(a, HashSecret("aaaa")) {
		t.Errorf("HashSecret: %x, %x", a, b)
	}
}

func TestAdminToken(t *testing.T) {
	t.Parallel()
	tok, err := NewAdminToken()
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^tntadm_[a-z2-7]{52}$`).MatchString(tok) {
		t.Fatalf("admin token %q has the wrong shape", tok)
	}
	if err := ValidAdminTokenFormat(tok); err != nil {
		t.Error(err)
	}
	sum := sha256.Sum256([]byte(tok))
	if got := HashAdminToken(tok); !bytes.Equal(got, sum[:]) {
		t.Errorf("HashAdminToken = %x, want SHA-256 of the whole token", got)
	}
	if other, _ := NewAdminToken(); other == tok {
		t.Error("two admin tokens are equal")
	}
}

func TestValidAdminTokenFormat(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("abcd", 13)
	tests := []struct {
		name, in, want string
	}{
		{"valid", "tntadm_" + body, ""},
		{"empty", "", `admin token: does not start with "tntadm_"`},
		{"join token", "TNT1.abcdef." + body[:26] + ".00", `admin token: does not start with "tntadm_"`},
		{"upper case prefix", "TNTADM_" + body, `admin token: does not start with "tntadm_"`},
		{"truncated", "tntadm_" + body[:40], `admin token: 40 characters after "tntadm_", want 52`},
		{"trailing newline", "tntadm_" + body + "\n", `admin token: 53 characters after "tntadm_", want 52`},
		{"upper case", "tntadm_" + strings.ToUpper(body), `admin token: has a character outside a-z and 2-7 after "tntadm_"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := errString(ValidAdminTokenFormat(tt.in)); got != tt.want {
				t.Errorf("error %q, want %q", got, tt.want)
			}
		})
	}
}
