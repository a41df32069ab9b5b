//go:build unix

package sshd

import (
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"

	gossh "golang.org/x/crypto/ssh"
)

// setDetached makes cmd the leader of a new session and process group.
func setDetached(cmd *exec.Cmd) {
	unignoreForChildren()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
}

// ignoredSink receives the signals unignoreForChildren takes over; no one
// reads it, and a full channel drops them, so they stay without effect.
var ignoredSink = make(chan os.Signal, 1)

// unignoreForChildren makes sure the commands the agent starts get the
// default action for SIGHUP and SIGINT. A process started with a signal
// ignored (an agent under nohup, as the local template starts it, or
// backgrounded by sh with `&`, which ignores SIGINT) passes that on to
// every child through exec: a session's shell and programs would then
// survive their terminal's hangup, and Ctrl-C would not interrupt them.
// Handling the signal in the agent (and dropping it) keeps the agent as
// it was started, while exec resets a handled signal to its default in
// the child, as OpenSSH's sshd does for its sessions.
func unignoreForChildren() {
	for _, sig := range []os.Signal{syscall.SIGHUP, syscall.SIGINT} {
		if signal.Ignored(sig) {
			signal.Notify(ignoredSink, sig)
		}
	}
}

// startPTY starts cmd on a new pseudo-terminal configured as req asks.
func startPTY(wg *sync.WaitGroup, cmd *exec.Cmd, ch gossh.Channel, req *ptyRequest, win windowChange) (*process, error) {
	ptmx, tty, err := openPTY(req, win)
	if err != nil {
		return nil, err
	}
	cmd.Env = mergeEnv(cmd.Env, []string{"SSH_TTY=" + tty.Name()})
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	unignoreForChildren()
	// Setctty makes tty (the child's stdin, Ctty 0) its controlling terminal.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	err = cmd.Start()
	tty.Close()
	if err != nil {
		ptmx.Close()
		return nil, err
	}
	p := newProcess(cmd.Process, reapCmd(cmd))
	p.pty = &ptyMaster{ptmx}
	// The client's EOF does not close the terminal: like OpenSSH, just
	// stop reading. Writes fail once wait closes ptmx.
	wg.Go(func() { _, _ = io.Copy(ptmx, ch) })
	var out sync.WaitGroup
	// Reading the master fails with EIO once no process holds the
	// terminal open any more.
	out.Go(func() { _, _ = io.Copy(ch, ptmx) })
	wg.Go(func() { p.wait(&out, ptmx) })
	return p, nil
}

// ptyMaster is the master side of a session's pseudo-terminal.
type ptyMaster struct{ f *os.File }

func (m *ptyMaster) resize(w windowChange) error { return setWinsize(m.f, w) }
func (m *ptyMaster) Close() error                { return m.f.Close() }

// hangup sends SIGHUP to the whole process group, like a terminal hangup.
// Background jobs that ignore SIGHUP (nohup) survive when the leader exits
// on SIGHUP.
func (p *process) hangup() {
	_ = syscall.Kill(-p.proc.Pid, syscall.SIGHUP) // the leader of its own group (Setsid)
}

// kill sends SIGKILL to the whole process group.
func (p *process) kill() {
	_ = syscall.Kill(-p.proc.Pid, syscall.SIGKILL)
}
