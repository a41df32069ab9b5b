package sshd

import (
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/devmesh/devmesh/internal/bulkcopy"
)

const (
	// drainTimeout bounds how long output is still forwarded after a
	// command exits, when a background child keeps its stdout or terminal
	// open. OpenSSH would wait for such a child; a dangling daemon should
	// not hold the session open forever.
	drainTimeout = time.Second
	// killGrace is how long a process group has to exit after hangup
	// before it is killed.
	killGrace = 2 * time.Second
)

// process is a session's command running on the workspace, with its
// standard streams connected to the session channel directly (pipes, with
// stderr as extended data) or through a pseudo-terminal.
//
// On Unix every process is the leader of a new session and process group,
// so that a hangup reaches all of its children and none share the agent's
// terminal; on Windows the whole process tree is ended (see terminate).
type process struct {
	proc  *os.Process
	reap  func() *os.ProcessState // waits for the process; nil state if unknown
	pty   *ptyMaster              // nil without a PTY
	stdin *os.File                // write end of the stdin pipe, nil with a PTY

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
	// Bulk transfers (ssh WS cat) go through stdin and stdout: larger
	// pipes, copied in larger chunks, wake the command and the copiers
	// less often.
	growPipe(inW)
	growPipe(outR)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	setDetached(cmd)
	err := cmd.Start()
	closeFiles(inR, outW, errW) // the child has its own copies
	if err != nil {
		closeFiles(inW, outR, errR)
		return nil, err
	}
	p := newProcess(cmd.Process, reapCmd(cmd))
	p.stdin = inW
	wg.Go(func() {
		// Ends at the client's EOF, when the channel closes, or when
		// the process is gone (EPIPE) or cleanup closes inW.
		_, _ = bulkcopy.Copy(inW, ch)
		inW.Close()
	})
	var out sync.WaitGroup
	out.Go(func() { _, _ = bulkcopy.Copy(ch, outR) })
	out.Go(func() { _, _ = io.Copy(ch.Stderr(), errR) })
	wg.Go(func() { p.wait(&out, outR, errR) })
	return p, nil
}

func newProcess(proc *os.Process, reap func() *os.ProcessState) *process {
	return &process{proc: proc, reap: reap, exited: make(chan struct{}), done: make(chan struct{})}
}

// reapCmd waits for a started cmd.
func reapCmd(cmd *exec.Cmd) func() *os.ProcessState {
	return func() *os.ProcessState {
		_ = cmd.Wait() // the status is in ProcessState
		return cmd.ProcessState
	}
}

// wait reaps the process, lets its output drain for up to drainTimeout,
// then closes the output descriptors and records the exit status.
func (p *process) wait(out *sync.WaitGroup, outputs ...io.Closer) {
	state := p.reap()
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
	for _, c := range outputs {
		c.Close()
	}
	<-drained
	p.exit = exitInfoOf(state)
	close(p.done)
}

// signal delivers sig to the process (not its group), as OpenSSH does.
// On Windows only SIGKILL can be delivered.
func (p *process) signal(sig syscall.Signal) error {
	return p.proc.Signal(sig)
}

// resize sets the terminal size; it is a no-op without a PTY.
func (p *process) resize(w windowChange) error {
	if p.pty == nil {
		return nil
	}
	return p.pty.resize(w)
}

// terminate ends the process because its client went away (see hangup
// and kill for what that means on each OS) and returns once the process is
// done.
func (p *process) terminate() {
	select {
	case <-p.exited:
	default:
		p.hangup()
		t := time.NewTimer(killGrace)
		select {
		case <-p.exited:
		case <-t.C:
			p.kill()
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
	if p.pty != nil {
		p.pty.Close()
	}
}

func closeFiles(fs ...*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}
