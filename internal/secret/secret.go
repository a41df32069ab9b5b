// Package secret mints random bearer secrets (tokens, auth keys) and
// hashes them for storage. Secrets carry 256 bits of entropy, so a plain
// SHA-256 is a sound storage hash; passwords use a slow KDF instead.
package secret

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"strings"
)

var enc = base32.StdEncoding.WithPadding(base32.NoPadding)

// New returns a new secret "<prefix>_<id>_<random>" and its public ID part
// (the first 8 characters after the prefix), which is safe to show.
func New(prefix string) (full, id string) {
	var b [32]byte
	rand.Read(b[:])
	body := strings.ToLower(enc.EncodeToString(b[:]))
	return prefix + "_" + body, body[:8]
}

// Hash returns the hex SHA-256 of s, the only form in which secrets are
// stored.
func Hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// Equal compares two strings in constant time.
func Equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
