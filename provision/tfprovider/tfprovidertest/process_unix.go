//go:build unix

package tfprovidertest

import "syscall"

// ProcessExists reports whether a process pid exists (signal 0).
func ProcessExists(pid int) bool { return syscall.Kill(pid, 0) == nil }
