package sshd

import (
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

const (
	// drainTimeout bounds how long output is still forwarded after a
	// command exits, when a background child keeps its stdout or terminal
	// open. OpenSSH would wait for such a child; a dangling daemon should
	// not hold the session open forever.
	drainTimeout = time.Second
	// killGrace is how long a process group has to exit after SIGHUP
	// before it is sent SIGKILL.
	killGrace = 2 * time.Second
)

// process is a session's command running on the workspace, with its
// standard streams connected to the session channel directly (pipes, with
// stderr as extended data) or through a pseudo-terminal.
//
// Every process is the leader of a new session and process group, so that
// a hangup reaches all of its children and none share the agent's terminal.
type process struct {
	cmd   *exec.Cmd
	ptmx  *os.File // pty master, nil without a PTY
	stdin *os.File // write end of the stdin pipe, nil with a PTY

	exited chan struct{} // closed once cmd.Wait has returned
	done   chan struct{} // closed once exited and output is drained
	exit   exitInfo      // written before done is closed
}

// startPipes starts cmd with pipes for stdin, stdout and stderr.
// Goroutines it starts are counted in wg and end once the process has
// exited and ch is closed.
func startPipes(wg *sync.WaitGroup, cmd *exec.Cmd, ch gossh.Channel) (*process, error) {
	var files [6]*os.File // child stdin, parent stdin, parent stdout, child stdout, ...
	for i := 0; i < 6; i += 2 {
		r, w, err := os.Pipe()
		if err != nil {
			closeFiles(files[:i]...)
			return nil, err
		}
		files[i], files[i+1] = r, w
	}
	inR, inW, outR, outW, errR, errW := files[0], files[1], files[2], files[3], files[4], files[5]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err := cmd.Start()
	closeFiles(inR, outW, errW) // the child has its own copies
	if err != nil {
		closeFiles(inW, outR, errR)
		return nil, err
	}
	p := newProcess(cmd)
	p.stdin = inW
	wg.Go(func() {
		// Ends at the client's EOF, when the channel closes, or when
		// the process is gone (EPIPE) or cleanup closes inW.
		_, _ = io.Copy(inW, ch)
		inW.Close()
	})
	var out sync.WaitGroup
	out.Go(func() { _, _ = io.Copy(ch, outR) })
	out.Go(func() { _, _ = io.Copy(ch.Stderr(), errR) })
	wg.Go(func() { p.wait(&out, outR, errR) })
	return p, nil
}

// startPTY starts cmd on the terminal tty whose master is ptmx.
func startPTY(wg *sync.WaitGroup, cmd *exec.Cmd, ch gossh.Channel, ptmx, tty *os.File) (*process, error) {
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	// Setctty makes tty (the child's stdin, Ctty 0) its controlling terminal.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	err := cmd.Start()
	tty.Close()
	if err != nil {
		ptmx.Close()
		return nil, err
	}
	p := newProcess(cmd)
	p.ptmx = ptmx
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

func newProcess(cmd *exec.Cmd) *process {
	return &process{cmd: cmd, exited: make(chan struct{}), done: make(chan struct{})}
}

// wait reaps the process, lets its output drain for up to drainTimeout,
// then closes the output descriptors and records the exit status.
func (p *process) wait(out *sync.WaitGroup, outputs ...*os.File) {
	_ = p.cmd.Wait() // the status is in ProcessState
	close(p.exited)
	drained := make(chan struct{})
	go func() {
		out.Wait()
		close(drained)
	}()
	t := time.NewTimer(drainTimeout)
	select {
	case <-drained:
	case <-t.C:
	}
	t.Stop()
	// Unblocks copiers still reading; a copier stuck writing to the
	// channel is released when the channel closes.
	closeFiles(outputs...)
	<-drained
	p.exit = exitInfoOf(p.cmd.ProcessState)
	close(p.done)
}

// signal delivers sig to the process (not its group), as OpenSSH does.
func (p *process) signal(sig syscall.Signal) error {
	return p.cmd.Process.Signal(sig)
}

// resize sets the terminal size; it is a no-op without a PTY.
func (p *process) resize(w windowChange) error {
	if p.ptmx == nil {
		return nil
	}
	return setWinsize(p.ptmx, w)
}

// terminate ends the process because its client went away: the whole
// process group gets SIGHUP, like on a terminal hangup, and SIGKILL if the
// leader survives killGrace. Background jobs that ignore SIGHUP (nohup)
// survive when the leader exits on SIGHUP. terminate returns once the
// process is done.
func (p *process) terminate() {
	select {
	case <-p.exited:
	default:
		pgid := p.cmd.Process.Pid // the leader of its own group (Setsid)
		_ = syscall.Kill(-pgid, syscall.SIGHUP)
		t := time.NewTimer(killGrace)
		select {
		case <-p.exited:
		case <-t.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
		t.Stop()
	}
	<-p.done
	p.close()
}

// close releases the input side; wait released the output side.
func (p *process) close() {
	if p.stdin != nil {
		p.stdin.Close()
	}
	if p.ptmx != nil {
		p.ptmx.Close()
	}
}

func closeFiles(fs ...*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}
