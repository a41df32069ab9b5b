package sshd

import (
	"errors"
	"fmt"
	"io"
	"sync"

	gossh "golang.org/x/crypto/ssh"
)

// TerminalOptions configures StartTerminal.
type TerminalOptions struct {
	// Columns and Rows are the initial size (default 80x24).
	Columns, Rows uint16
	// Term is the TERM variable (default xterm-256color).
	Term string
	// Env is added after the server's environment (Options.Env).
	Env []string
	// Output receives everything the terminal prints. Writes should not
	// block for long: the shell stalls while they do.
	Output io.Writer
}

// Terminal is a login shell on a pseudo-terminal that no SSH channel
// owns: the browser terminal's shell. It runs with the same user, shell,
// environment and working directory as an SSH session. Input is given
// with Write; output goes to TerminalOptions.Output.
type Terminal struct {
	proc *process
	in   *io.PipeWriter
	wg   sync.WaitGroup // the PTY's copy goroutines

	closeOnce sync.Once
}

// StartTerminal starts a login shell on a new pseudo-terminal.
func (s *Server) StartTerminal(o TerminalOptions) (*Terminal, error) {
	if o.Output == nil {
		return nil, errors.New("sshd: terminal output is required")
	}
	if o.Columns == 0 || o.Rows == 0 {
		o.Columns, o.Rows = 80, 24
	}
	if o.Term == "" {
		o.Term = "xterm-256color"
	}
	cmd := shellCommand(s.shell, true, "")
	cmd.Dir = workDir(s.opts.Dir, s.account.home)
	cmd.Env = mergeEnv(s.baseEnv, s.opts.Env, o.Env, []string{"TERM=" + o.Term})
	inR, inW := io.Pipe()
	t := &Terminal{in: inW}
	ch := &terminalChannel{in: inR, out: o.Output}
	win := windowChange{Columns: uint32(o.Columns), Rows: uint32(o.Rows)}
	p, err := startPTY(&t.wg, cmd, ch, &ptyRequest{Term: o.Term}, win)
	if err != nil {
		inR.Close()
		return nil, fmt.Errorf("start %s: %w", s.shell, err)
	}
	t.proc = p
	return t, nil
}

// Write sends input to the terminal.
func (t *Terminal) Write(p []byte) (int, error) { return t.in.Write(p) }

// Resize sets the terminal size.
func (t *Terminal) Resize(cols, rows uint16) error {
	return t.proc.resize(windowChange{Columns: uint32(cols), Rows: uint32(rows)})
}

// Done is closed once the shell has exited and its output is drained.
func (t *Terminal) Done() <-chan struct{} { return t.proc.done }

// ExitCode is the shell's exit status, valid once Done is closed.
func (t *Terminal) ExitCode() int { return int(t.proc.exit.code) }

// Close hangs up the terminal (SIGHUP, then SIGKILL after a grace
// period) and waits for the shell and the copy goroutines. It is
// idempotent.
func (t *Terminal) Close() error {
	t.closeOnce.Do(func() {
		t.in.Close()
		t.proc.terminate()
		t.wg.Wait()
	})
	return nil
}

// terminalChannel lets startPTY, written for SSH channels, serve a
// Terminal: reads are the input pipe, writes go to the output.
type terminalChannel struct {
	in  *io.PipeReader
	out io.Writer
}

func (c *terminalChannel) Read(p []byte) (int, error)  { return c.in.Read(p) }
func (c *terminalChannel) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c *terminalChannel) Close() error                { return c.in.Close() }
func (c *terminalChannel) CloseWrite() error           { return nil }
func (c *terminalChannel) Stderr() io.ReadWriter       { return c }
func (c *terminalChannel) SendRequest(string, bool, []byte) (bool, error) {
	return false, nil
}

var _ gossh.Channel = (*terminalChannel)(nil)
