// Package certpin pins a server's TLS certificate by its SHA-256
// fingerprint: the CLI and the agent use it for a coordinator that serves
// HTTPS with its self-signed certificate (`devmesh server
// --tls-self-signed`), which no CA vouches for.
package certpin

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// EnvFingerprint names the environment variable that gives the pin to
// commands that take the coordinator from the environment (the agent,
// scripts with DEVMESH_URL and DEVMESH_TOKEN).
const EnvFingerprint = "DEVMESH_FINGERPRINT"

// Fingerprint returns the SHA-256 fingerprint of a DER certificate as 64
// lowercase hex digits (what `openssl x509 -fingerprint -sha256` shows,
// without the colons).
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// Parse normalizes a fingerprint as a user may type it: an optional
// "sha256:" prefix, colons or spaces between the pairs, any case.
func Parse(s string) (string, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimPrefix(t, "sha256:")
	t = strings.NewReplacer(":", "", " ", "").Replace(t)
	if b, err := hex.DecodeString(t); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("fingerprint %q: want the certificate's SHA-256 as 64 hex digits", s)
	}
	return t, nil
}

// MismatchError is a server certificate that is not the pinned one.
type MismatchError struct {
	Want, Got string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("the server's certificate has fingerprint %s, not the pinned %s", e.Got, e.Want)
}

// Config returns a TLS client configuration that accepts exactly the
// leaf certificate with fingerprint fp (as returned by Parse), whatever
// its issuer or names, and nothing else.
func Config(fp string) *tls.Config {
	return &tls.Config{
		// The pin replaces the CA chain and name checks, done in
		// VerifyConnection instead.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the server sent no certificate")
			}
			if got := Fingerprint(cs.PeerCertificates[0].Raw); got != fp {
				return &MismatchError{Want: fp, Got: got}
			}
			return nil
		},
	}
}
