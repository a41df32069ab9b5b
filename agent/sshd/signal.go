package sshd

import (
	"os"
	"syscall"
)

// exitInfo is how a session's command ended.
type exitInfo struct {
	code       int    // exit status, when signal is ""
	signal     string // exit-signal name, when killed by a signal
	coreDumped bool
}

func exitInfoOf(ps *os.ProcessState) exitInfo {
	if ps == nil {
		return exitInfo{code: 255}
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok {
		return exitInfo{code: ps.ExitCode()}
	}
	if ws.Signaled() {
		return exitInfo{signal: signalName(ws.Signal()), coreDumped: ws.CoreDump()}
	}
	return exitInfo{code: ws.ExitStatus()}
}
