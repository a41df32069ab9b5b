package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"syscall"

	"github.com/devmesh/devmesh/internal/certpin"
)

// WithFingerprint pins the coordinator's TLS certificate: only the
// certificate with this SHA-256 fingerprint (see certpin.Parse) is
// accepted, whoever issued it. For a coordinator serving its self-signed
// certificate (`devmesh server --tls-self-signed`).
func WithFingerprint(fp string) Option { return func(c *Client) { c.pin = fp } }

// Fingerprint returns the pinned certificate fingerprint ("" if none).
func (c *Client) Fingerprint() string { return c.pin }

// TLSConfig returns the TLS client configuration for reaching the
// coordinator: nil (the system's roots) unless a fingerprint is pinned.
func (c *Client) TLSConfig() *tls.Config {
	if c.pin == "" {
		return nil
	}
	return certpin.Config(c.pin)
}

// applyPin makes the HTTP client verify the pinned fingerprint. A client
// given through WithHTTPClient keeps its transport unless it is an
// *http.Transport (cloned) or nil.
func (c *Client) applyPin() error {
	if c.pin == "" {
		return nil
	}
	fp, err := certpin.Parse(c.pin)
	if err != nil {
		return err
	}
	c.pin = fp
	hc := *c.http
	var tr *http.Transport
	switch t := hc.Transport.(type) {
	case nil:
		tr = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		tr = t.Clone()
	default:
		return nil
	}
	tr.TLSClientConfig = certpin.Config(fp)
	hc.Transport = tr
	c.http = &hc
	return nil
}

// explain turns a transport error into one that says what to do; the
// original error stays in the chain.
func (c *Client) explain(err error) error {
	if err == nil {
		return nil
	}
	host, base := c.base.Host, c.base.String()
	var (
		recErr   tls.RecordHeaderError
		mismatch *certpin.MismatchError
		unknown  x509.UnknownAuthorityError
		hostErr  x509.HostnameError
	)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return connError(unreachable(c.base, err), "cannot reach the coordinator at %s: connection refused. Is `devmesh server` running there, and is the port right?", base)
	case errors.As(err, &recErr) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return connError(err, "%s answers plain HTTP, not HTTPS: use http://%s, or start the server with --tls-self-signed (or --tls-cert) for HTTPS", host, host)
	case errors.As(err, &mismatch):
		return connError(err, "%s: %v. The server's certificate changed, or something is between you and it. If it was replaced on purpose, log in again with the new fingerprint: devmesh login %s --fingerprint NEW", host, mismatch, base)
	case errors.As(err, &unknown) && unknown.Cert != nil:
		return untrusted(base, unknown.Cert, err)
	case errors.As(err, &hostErr) && hostErr.Certificate != nil:
		return untrusted(base, hostErr.Certificate, err)
	}
	// No HTTP response at all: the coordinator or the network is down.
	u := unreachable(c.base, err)
	return &ConnError{Msg: u.Error(), Err: u}
}

// ConnError is a transport error explained: what happened and what to
// do, with the original error kept for errors.Is/As.
type ConnError struct {
	Msg string
	Err error
}

func (e *ConnError) Error() string { return e.Msg }
func (e *ConnError) Unwrap() error { return e.Err }

func connError(err error, format string, args ...any) error {
	return &ConnError{Msg: fmt.Sprintf(format, args...), Err: err}
}

// IsTransportExplained reports whether err already says what went wrong
// reaching the coordinator and what to do (a *ConnError or an
// *UntrustedError), so callers need not wrap it.
func IsTransportExplained(err error) bool {
	var ce *ConnError
	var ue *UntrustedError
	return errors.As(err, &ce) || errors.As(err, &ue)
}

// ErrUntrusted marks a certificate that no trusted CA signed (and that
// is not pinned); UntrustedError carries its fingerprint.
var ErrUntrusted = errors.New("the coordinator's certificate is not trusted")

// UntrustedError is a coordinator certificate that the system does not
// trust, with its fingerprint for pinning.
type UntrustedError struct {
	URL         string
	Fingerprint string
	Err         error
}

func (e *UntrustedError) Error() string {
	return fmt.Sprintf("the certificate of %s is not signed by a trusted authority (a self-signed certificate?). Its SHA-256 fingerprint is\n  %s\nCompare it with the one `devmesh server` printed, then pin it: devmesh login %s --fingerprint %s (agents and scripts: %s=%s)", e.URL, e.Fingerprint, e.URL, e.Fingerprint, certpin.EnvFingerprint, e.Fingerprint)
}

func (e *UntrustedError) Unwrap() []error { return []error{ErrUntrusted, e.Err} }

func untrusted(base string, cert *x509.Certificate, err error) error {
	return &UntrustedError{URL: base, Fingerprint: certpin.Fingerprint(cert.Raw), Err: err}
}

// CodeHTTPSRequired is the error code of an API call made over plain HTTP
// to a coordinator whose access URL is https.
const CodeHTTPSRequired = "https_required"
