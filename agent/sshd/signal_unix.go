//go:build unix

package sshd

import (
	"strconv"
	"strings"
	"syscall"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// signals maps the signal names of RFC 4254 section 6.10 to Unix signals.
var signals = map[gossh.Signal]syscall.Signal{
	gossh.SIGABRT: syscall.SIGABRT,
	gossh.SIGALRM: syscall.SIGALRM,
	gossh.SIGFPE:  syscall.SIGFPE,
	gossh.SIGHUP:  syscall.SIGHUP,
	gossh.SIGILL:  syscall.SIGILL,
	gossh.SIGINT:  syscall.SIGINT,
	gossh.SIGKILL: syscall.SIGKILL,
	gossh.SIGPIPE: syscall.SIGPIPE,
	gossh.SIGQUIT: syscall.SIGQUIT,
	gossh.SIGSEGV: syscall.SIGSEGV,
	gossh.SIGTERM: syscall.SIGTERM,
	gossh.SIGUSR1: syscall.SIGUSR1,
	gossh.SIGUSR2: syscall.SIGUSR2,
}

// signalName is the exit-signal name for sig: the RFC 4254 name, or, like
// OpenSSH, "NAME@openssh.com" for a signal the RFC does not list.
func signalName(sig syscall.Signal) string {
	for name, s := range signals {
		if s == sig {
			return string(name)
		}
	}
	name := strings.TrimPrefix(unix.SignalName(sig), "SIG")
	if name == "" {
		name = strconv.Itoa(int(sig))
	}
	return name + "@openssh.com"
}
