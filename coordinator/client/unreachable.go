package client

import (
	"errors"
	"fmt"
	"net"
	"net/url"
)

// ErrUnreachable is wrapped by every error of a request that got no HTTP
// response: the coordinator is down, or the network is.
var ErrUnreachable = errors.New("cannot reach the coordinator")

// unreachableError says which coordinator could not be reached and why,
// in words rather than as a Go dial error.
type unreachableError struct {
	base   *url.URL
	reason string
	err    error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("%v at %s: %s (is it running, and is this the right URL?)", ErrUnreachable, e.base.Redacted(), e.reason)
}

func (e *unreachableError) Unwrap() []error { return []error{ErrUnreachable, e.err} }

// unreachable wraps a transport error of a request to base.
func unreachable(base *url.URL, err error) error {
	reason := err.Error()
	var op *net.OpError
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns):
		reason = "cannot resolve " + dns.Name
	case errors.As(err, &op) && op.Err != nil:
		reason = op.Err.Error() // "connect: connection refused", "i/o timeout"
	}
	return &unreachableError{base: base, reason: reason, err: err}
}
