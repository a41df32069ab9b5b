package sshd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/windows"
)

// setDetached starts cmd in a new process group without a console window,
// so that the agent's own console events do not reach it.
func setDetached(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.CreationFlags |= windows.CREATE_NEW_PROCESS_GROUP
	cmd.SysProcAttr.HideWindow = true
}

// hangup ends the process and its children. Windows has no hangup signal
// that reaches a process tree, so this is taskkill /T /F; kill is the
// fallback if even that leaves the process running.
func (p *process) hangup() {
	ctx, cancel := context.WithTimeout(context.Background(), killGrace)
	defer cancel()
	taskkill := filepath.Join(os.Getenv("SystemRoot"), "System32", "taskkill.exe")
	cmd := exec.CommandContext(ctx, taskkill, "/T", "/F", "/PID", strconv.Itoa(p.proc.Pid))
	cmd.SysProcAttr = &syscall.SysProcAttr{HideWindow: true}
	if err := cmd.Run(); err != nil {
		p.kill()
	}
}

// kill terminates the process.
func (p *process) kill() {
	_ = p.proc.Kill()
}
