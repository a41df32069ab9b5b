//go:build unix

package sshd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// TestPTYShell drives a login shell through a real terminal: the OpenSSH
// client runs on a pseudo-terminal of the test, as it would in a user's
// terminal emulator.
func TestPTYShell(t *testing.T) {
	ts := newTestServer(t, nil)
	cmd := ts.command(t, "ssh", "-tt", "127.0.0.1")
	cmd.Env = append(withoutEnv(cmd.Env, "TERM"), "TERM=xterm-256color")
	term, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	screen := newScreen(term)

	send := func(s string) {
		if _, err := term.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	// The echo of the typed line cannot match: it shows $TERM, not its value.
	send("echo T=$TERM Z=$0; echo S=$(stty size)\n")
	screen.expect(t, `T=xterm-256color Z=-`+regexp.QuoteMeta(filepath.Base(ts.srv.shell)))
	screen.expect(t, `S=40 120\r\n`)

	if err := pty.Setsize(term, &pty.Winsize{Rows: 50, Cols: 132}); err != nil {
		t.Fatal(err)
	}
	// The client sends window-change when it notices SIGWINCH; ask until
	// the new size shows.
	waitFor(t, 10*time.Second, "the new window size", func() bool {
		send("echo S=$(stty size)\n")
		m := screen.wait(`S=(\d+ \d+)\r\n`, 2*time.Second)
		return m != nil && string(m[1]) == "50 132"
	})

	send("exit 7\n")
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("ssh exited with %v, want status 7 from the remote shell", err)
	}
}

// screen collects what a terminal shows.
type screen struct {
	mu  sync.Mutex
	buf []byte // output not yet consumed by a match
}

func newScreen(r io.Reader) *screen {
	s := &screen{}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := r.Read(b)
			s.mu.Lock()
			s.buf = append(s.buf, b[:n]...)
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return s
}

// wait returns the submatches of the first match of re in the output,
// consuming the output up to it, or nil after d.
func (s *screen) wait(re string, d time.Duration) [][]byte {
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		loc := rx.FindSubmatchIndex(s.buf)
		var m [][]byte
		if loc != nil {
			m = rx.FindSubmatch(s.buf)
			m = [][]byte{bytes.Clone(m[0]), bytes.Clone(m[len(m)-1])}
			s.buf = s.buf[loc[1]:]
		}
		s.mu.Unlock()
		if m != nil {
			return m
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

func (s *screen) expect(t *testing.T, re string) {
	t.Helper()
	if s.wait(re, 10*time.Second) == nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		t.Fatalf("terminal never showed %q; it shows %q", re, s.buf)
	}
}

func TestApplyModes(t *testing.T) {
	enc := func(pairs ...uint32) []byte {
		var b []byte
		for i := 0; i < len(pairs); i += 2 {
			b = append(b, byte(pairs[i]))
			b = binary.BigEndian.AppendUint32(b, pairs[i+1])
		}
		return b
	}
	tests := []struct {
		name  string
		start unix.Termios
		modes []byte
		want  unix.Termios
	}{
		{"erase char and flags", unix.Termios{Lflag: unix.ECHO},
			enc(3, 0x08, 53, 0, 51, 1, 36, 1, 72, 1),
			func() unix.Termios {
				var w unix.Termios
				w.Cc[unix.VERASE] = 0x08
				w.Lflag, w.Iflag, w.Oflag = unix.ICANON, unix.ICRNL, unix.ONLCR
				return w
			}()},
		{"unknown opcode skipped", unix.Termios{},
			enc(19, 7, 38, 1), unix.Termios{Iflag: unix.IXON}},
		{"stops at TTY_OP_END", unix.Termios{},
			append(enc(0, 0), enc(38, 1)...), unix.Termios{}},
		{"stops at opcode 160", unix.Termios{},
			append(enc(160, 0), enc(38, 1)...), unix.Termios{}},
		{"truncated entry ignored", unix.Termios{},
			append(enc(38, 1), 50, 0, 0), unix.Termios{Iflag: unix.IXON}},
		{"CS7 then CS8 as a CS8 terminal sends them", unix.Termios{},
			enc(90, 1, 91, 1), unix.Termios{Cflag: unix.CS8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.start
			applyModes(&got, tt.modes)
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
