// Package password hashes and verifies user passwords with argon2id,
// encoded as PHC strings ($argon2id$v=19$m=...,t=...,p=...$salt$hash) so
// that parameters can be raised later without invalidating stored hashes.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// ErrMalformed is returned by Verify for a stored hash it cannot parse.
var ErrMalformed = errors.New("malformed password hash")

// Params are argon2id cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
}

// DefaultParams follow the OWASP recommendation for argon2id (19 MiB,
// two passes, one lane): tens of milliseconds per hash on a server core.
func DefaultParams() Params { return Params{Memory: 19 * 1024, Time: 2, Threads: 1} }

// Bounds on parameters accepted from a stored hash, so that a corrupted
// row cannot make one verification allocate gigabytes.
const (
	maxMemory  = 1 << 20 // 1 GiB in KiB
	maxTime    = 16
	saltLen    = 16
	keyLen     = 32
	phcVersion = "v=19"
)

var b64 = base64.RawStdEncoding

// Hash returns the PHC-encoded argon2id hash of pw with a fresh random
// salt and the default parameters.
func Hash(pw string) (string, error) {
	return HashWith(pw, DefaultParams())
}

// HashWith is Hash with explicit parameters.
func HashWith(pw string, p Params) (string, error) {
	if p.Memory == 0 || p.Time == 0 || p.Threads == 0 {
		return "", errors.New("password: zero argon2 parameter")
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, keyLen)
	return fmt.Sprintf("$argon2id$%s$m=%d,t=%d,p=%d$%s$%s",
		phcVersion, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify reports whether pw matches the encoded hash. The comparison is
// constant-time; the cost is that of the parameters in the hash.
func Verify(encoded, pw string) (bool, error) {
	p, salt, want, err := parse(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// dummySalt is fixed: VerifyDummy only has to cost what Verify costs.
var dummySalt = make([]byte, saltLen)

// VerifyDummy does the work of verifying pw against a hash with the
// default parameters, and nothing else. Call it for unknown users so that
// response times do not reveal which usernames exist.
func VerifyDummy(pw string) {
	p := DefaultParams()
	argon2.IDKey([]byte(pw), dummySalt, p.Time, p.Memory, p.Threads, keyLen)
}

// parse decodes "$argon2id$v=19$m=M,t=T,p=P$salt$hash".
func parse(encoded string) (Params, []byte, []byte, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != phcVersion {
		return Params{}, nil, nil, ErrMalformed
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return Params{}, nil, nil, ErrMalformed
	}
	if p.Memory == 0 || p.Memory > maxMemory || p.Time == 0 || p.Time > maxTime || p.Threads == 0 {
		return Params{}, nil, nil, ErrMalformed
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return Params{}, nil, nil, ErrMalformed
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return Params{}, nil, nil, ErrMalformed
	}
	return p, salt, key, nil
}
