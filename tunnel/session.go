package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/devmesh/devmesh/internal/bulkcopy"
)

// SessionOptions describes one SSH session: a command or a login shell,
// with or without a terminal.
type SessionOptions struct {
	// Command runs through the remote user's shell; empty starts a login
	// shell.
	Command string
	// Stdin, Stdout and Stderr are streamed; nil Stdin sends EOF at once,
	// nil Stdout or Stderr discards. Stdin is read in a goroutine that
	// may outlive the session while a Read blocks (a terminal).
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// PTY, if set, gives the session a terminal.
	PTY *PTY
	// Env is sent as environment requests (the server may refuse some).
	Env map[string]string
	// Signals are delivered to the remote process while it runs.
	Signals <-chan ssh.Signal
}

// PTY describes the remote terminal.
type PTY struct {
	Term          string // TERM; default xterm-256color
	Width, Height int    // in characters; default 80x24
	Modes         ssh.TerminalModes
	// Resize delivers window size changes.
	Resize <-chan WindowSize
}

// WindowSize is a terminal's size in characters.
type WindowSize struct{ Width, Height int }

// ExitStatus is how the remote command ended.
type ExitStatus struct {
	Code int
	// Signal is set ("TERM", "KILL", ...) when a signal killed the command;
	// Code is then 255, as with OpenSSH.
	Signal string
}

// outputDrain bounds how long RunSession waits for the last output once
// the remote command has exited.
const outputDrain = 5 * time.Second

// RunSession runs one session on c and returns how the remote command
// ended. An error means the session itself failed (it could not start, or
// the connection broke); ctx ending closes the session.
func RunSession(ctx context.Context, c *ssh.Client, o SessionOptions) (ExitStatus, error) {
	s, err := c.NewSession()
	if err != nil {
		return ExitStatus{}, fmt.Errorf("open session: %w", err)
	}
	defer s.Close()
	for k, v := range o.Env {
		s.Setenv(k, v) // a refusal is not fatal, as with OpenSSH
	}
	stdin, err := s.StdinPipe()
	if err != nil {
		return ExitStatus{}, err
	}
	stdout, _ := s.StdoutPipe()
	stderr, _ := s.StderrPipe()
	if o.PTY != nil {
		if err := requestPTY(s, o.PTY); err != nil {
			return ExitStatus{}, err
		}
	}
	if o.Command == "" {
		err = s.Shell()
	} else {
		err = s.Start(o.Command)
	}
	if err != nil {
		return ExitStatus{}, fmt.Errorf("start remote command: %w", err)
	}
	go feedStdin(stdin, o.Stdin)
	var out sync.WaitGroup
	out.Go(func() { bulkcopy.Copy(orDiscard(o.Stdout), stdout) })
	out.Go(func() { io.Copy(orDiscard(o.Stderr), stderr) })

	done := make(chan struct{})
	defer close(done)
	go relay(ctx, s, o, done)
	err = s.Wait()
	waitTimeout(&out, outputDrain)
	if ctx.Err() != nil {
		return ExitStatus{}, context.Cause(ctx)
	}
	return exitStatus(err)
}

// requestPTY asks for a terminal of p's kind and size.
func requestPTY(s *ssh.Session, p *PTY) error {
	term, w, h := p.Term, p.Width, p.Height
	if term == "" {
		term = "xterm-256color"
	}
	if w <= 0 || h <= 0 {
		w, h = 80, 24
	}
	modes := p.Modes
	if modes == nil {
		modes = ssh.TerminalModes{ssh.ECHO: 1, ssh.TTY_OP_ISPEED: 38400, ssh.TTY_OP_OSPEED: 38400}
	}
	if err := s.RequestPty(term, h, w, modes); err != nil {
		return fmt.Errorf("request a terminal: %w", err)
	}
	return nil
}

// feedStdin copies r to the session's stdin and then sends EOF.
func feedStdin(w io.WriteCloser, r io.Reader) {
	if r != nil {
		bulkcopy.Copy(w, r)
	}
	w.Close()
}

// relay forwards window size changes and signals until done, and closes
// the session if ctx ends first.
func relay(ctx context.Context, s *ssh.Session, o SessionOptions, done <-chan struct{}) {
	var resize <-chan WindowSize
	if o.PTY != nil {
		resize = o.PTY.Resize
	}
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			s.Close()
			return
		case ws, ok := <-resize:
			if !ok {
				resize = nil
				continue
			}
			s.WindowChange(ws.Height, ws.Width)
		case sig, ok := <-o.Signals:
			if !ok {
				o.Signals = nil
				continue
			}
			s.Signal(sig)
		}
	}
}

// exitStatus turns Session.Wait's error into an ExitStatus.
func exitStatus(err error) (ExitStatus, error) {
	var ee *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
		return ExitStatus{}, nil
	case errors.As(err, &ee):
		if sig := ee.Signal(); sig != "" {
			return ExitStatus{Code: 255, Signal: sig}, nil
		}
		return ExitStatus{Code: ee.ExitStatus()}, nil
	case errors.As(err, &missing):
		return ExitStatus{}, errors.New("the remote command ended without an exit status (the connection was lost?)")
	}
	return ExitStatus{}, err
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
	}
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// ShellQuote joins args into one command line for a POSIX shell: a single
// argument is passed as is (so it may use shell syntax); several are each
// quoted, so that they arrive as the same words.
func ShellQuote(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = quoteWord(a)
	}
	return strings.Join(q, " ")
}

// quoteWord quotes a for a POSIX shell, leaving plain words alone.
func quoteWord(a string) string {
	if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}
