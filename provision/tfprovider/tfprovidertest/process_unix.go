//go:build unix

package tfprovidertest

import "syscall"

// processExists reports whether a process pid exists (signal 0).
func processExists(pid int) bool { return syscall.Kill(pid, 0) == nil }
