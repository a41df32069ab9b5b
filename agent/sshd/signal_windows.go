package sshd

import (
	"strconv"
	"syscall"

	gossh "golang.org/x/crypto/ssh"
)

// signals maps the signal names of RFC 4254 section 6.10 to the signals
// Go knows on Windows. Only SIGKILL can be delivered there (it terminates
// the process); the others are refused.
var signals = map[gossh.Signal]syscall.Signal{
	gossh.SIGINT:  syscall.SIGINT,
	gossh.SIGKILL: syscall.SIGKILL,
	gossh.SIGTERM: syscall.SIGTERM,
}

// signalName is the exit-signal name for sig. Windows processes are not
// killed by signals, so this is only reached for an unusual wait status.
func signalName(sig syscall.Signal) string {
	for name, s := range signals {
		if s == sig {
			return string(name)
		}
	}
	return strconv.Itoa(int(sig)) + "@openssh.com"
}
