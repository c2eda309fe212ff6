package pki

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
)

const (
	joinTokenVersion   = "TNT1"
	joinTokenIDLen     = 6
	joinTokenSecretLen = 26 // 130 random bits
	caHashHexLen       = 64
	adminTokenPrefix   = "tntadm_"
	adminTokenLen      = 52 // 260 random bits

	// Lower case base32 (RFC 4648 alphabet): no 0/O or 1/l to misread, and
	// the tokens survive double-click selection and case-folding chat tools.
	base32Alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	base32Chars    = "a-z and 2-7"
)

// JoinToken enrolls agents into an environment. It carries the CA hash so
// that the agent's very first connection can already refuse an impostor.
type JoinToken struct {
	ID     string // public: names the token in listings and the store
	Secret string // shown once; the server keeps only HashSecret(Secret)
	CAHash string // "sha256:<hex>", as CA.Hash
}

// NewJoinToken makes a token with a random ID and secret for the CA whose
// hash is caHash.
func NewJoinToken(caHash string) (JoinToken, error) {
	hexHash, ok := strings.CutPrefix(caHash, hashPrefix)
	if !ok || !isLowerHex(hexHash, caHashHexLen) {
		return JoinToken{}, fmt.Errorf("join token: CA hash %q is not \"sha256:\" and 64 lower case hex characters", caHash)
	}
	id, err := randomBase32(joinTokenIDLen)
	if err != nil {
		return JoinToken{}, err
	}
	secret, err := randomBase32(joinTokenSecretLen)
	if err != nil {
		return JoinToken{}, err
	}
	return JoinToken{ID: id, Secret: secret, CAHash: caHash}, nil
}

// String is the token as given to `tentacle enroll`:
// "TNT1.<id>.<secret>.<hex of the CA hash>". It contains the secret.
func (t JoinToken) String() string {
	return joinTokenVersion + "." + t.ID + "." + t.Secret + "." + strings.TrimPrefix(t.CAHash, hashPrefix)
}

// ParseJoinToken parses what String returns, ignoring surrounding blank
// space. Errors name the part that is wrong and never contain the secret:
// they end up in logs on both sides.
func ParseJoinToken(s string) (JoinToken, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return JoinToken{}, errors.New("join token: empty")
	}
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return JoinToken{}, fmt.Errorf("join token: %d parts separated by \".\", want 4 (TNT1.<id>.<secret>.<CA hash>)", len(parts))
	}
	if parts[0] != joinTokenVersion {
		if isVersionTag(parts[0]) {
			return JoinToken{}, fmt.Errorf("join token: version %s is not supported, want TNT1 (the agent may be older than the server)", parts[0])
		}
		return JoinToken{}, errors.New("join token: does not start with \"TNT1.\"")
	}
	if err := checkBase32("id", parts[1], joinTokenIDLen); err != nil {
		return JoinToken{}, err
	}
	if err := checkBase32("secret", parts[2], joinTokenSecretLen); err != nil {
		return JoinToken{}, err
	}
	switch {
	case len(parts[3]) != caHashHexLen:
		return JoinToken{}, fmt.Errorf("join token: CA hash is %d characters, want %d", len(parts[3]), caHashHexLen)
	case !isLowerHex(parts[3], caHashHexLen):
		return JoinToken{}, errors.New("join token: CA hash has a character outside 0-9 and a-f")
	}
	return JoinToken{ID: parts[1], Secret: parts[2], CAHash: hashPrefix + parts[3]}, nil
}

func checkBase32(part, s string, n int) error {
	if len(s) != n {
		return fmt.Errorf("join token: %s is %d characters, want %d", part, len(s), n)
	}
	if !isBase32(s) {
		return fmt.Errorf("join token: %s has a character outside %s", part, base32Chars)
	}
	return nil
}

// isVersionTag reports whether s looks like a token version ("TNT2"), so
// that a token from a newer server gets a better error than "malformed".
func isVersionTag(s string) bool {
	digits, ok := strings.CutPrefix(s, "TNT")
	if !ok || digits == "" || len(digits) > 4 {
		return false
	}
	return strings.Trim(digits, "0123456789") == ""
}

// HashSecret is what the store keeps of a join token's secret. A plain
// SHA-256 is enough: the secret is random, so there is nothing to guess.
func HashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// NewAdminToken makes an admin API bearer token: "tntadm_" and 52 base32
// characters. The prefix lets secret scanners and humans recognise it.
func NewAdminToken() (string, error) {
	s, err := randomBase32(adminTokenLen)
	if err != nil {
		return "", err
	}
	return adminTokenPrefix + s, nil
}

// HashAdminToken is what the store keeps of an admin token: the SHA-256 of
// the whole token, which is random and needs no slow hash either.
func HashAdminToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// ValidAdminTokenFormat tells a malformed token (a truncated paste, the
// wrong variable) from an unknown one. Errors never contain the token.
func ValidAdminTokenFormat(token string) error {
	rest, ok := strings.CutPrefix(token, adminTokenPrefix)
	switch {
	case !ok:
		return errors.New("admin token: does not start with \"tntadm_\"")
	case len(rest) != adminTokenLen:
		return fmt.Errorf("admin token: %d characters after \"tntadm_\", want %d", len(rest), adminTokenLen)
	case !isBase32(rest):
		return errors.New("admin token: has a character outside " + base32Chars + " after \"tntadm_\"")
	}
	return nil
}

// randomBase32 returns n characters of 5 random bits each. Masking a random
// byte to 5 bits is unbiased because 256 is a multiple of 32.
func randomBase32(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = base32Alphabet[b[i]&31]
	}
	return string(b), nil
}

func isBase32(s string) bool {
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune(base32Alphabet, rune(s[i])) {
			return false
		}
	}
	return true
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
