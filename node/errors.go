package node

import (
	"errors"
	"strings"
	"syscall"
)

// IsRefused reports whether err from Dial means the peer answered that
// nothing listens on the port. Userspace networking (gVisor) reports it as
// an error string, not as ECONNREFUSED.
func IsRefused(err error) bool {
	return err != nil && (errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "connection was refused"))
}
