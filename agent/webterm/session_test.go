package webterm

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devmesh/devmesh/agent/sshd"
	"github.com/devmesh/devmesh/internal/termproto"
)

// chanTransport is the client end of an attachment in memory.
type chanTransport struct {
	frames chan []byte
	closed chan struct{}
}

func newChanTransport() *chanTransport {
	return &chanTransport{frames: make(chan []byte, 4096), closed: make(chan struct{})}
}

func (c *chanTransport) Send(f []byte) error { c.frames <- f; return nil }
func (c *chanTransport) Close() error {
	select {
	case <-c.closed:
	default:
		close(c.closed)
	}
	return nil
}

func (c *chanTransport) waitOutput(t *testing.T, want string) {
	t.Helper()
	var out bytes.Buffer
	timeout := time.After(10 * time.Second)
	for !strings.Contains(out.String(), want) {
		select {
		case f := <-c.frames:
			if f[0] == termproto.Output {
				out.Write(f[1:])
			}
		case <-timeout:
			t.Fatalf("no %q in %q", want, out.String())
		}
	}
}

func newTestManager(t *testing.T, idle time.Duration) *Manager {
	t.Helper()
	signer, err := sshd.LoadOrCreateHostKey(filepath.Join(t.TempDir(), "key"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sshd.New(sshd.Options{HostSigner: signer, Shell: "/bin/sh"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	m, err := NewManager(ManagerOptions{IdleTimeout: idle, Start: func(out io.Writer) (Shell, error) {
		return srv.StartTerminal(sshd.TerminalOptions{Output: out})
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func ticket(user, sid string) termproto.Ticket {
	return termproto.Ticket{User: user, SessionID: sid}
}

// TestSessionReattachAndIdle: a reattach replays the scrollback to the
// new client; another user cannot attach; a detached session ends after
// the idle timeout.
func TestSessionReattachAndIdle(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, 500*time.Millisecond)
	c1 := newChanTransport()
	a1, err := m.Attach(ticket("bob", "s1"), c1, termproto.PathDirect)
	if err != nil {
		t.Fatal(err)
	}
	a1.Handle(termproto.Frame(termproto.Input, []byte("echo $((6*7))\n")))
	c1.waitOutput(t, "42\r\n")
	a1.Detach()

	if _, err := m.Attach(ticket("carol", "s1"), newChanTransport(), termproto.PathDirect); !errors.Is(err, termproto.ErrTicket) {
		t.Fatalf("another user's attach: %v, want a ticket error", err)
	}
	c2 := newChanTransport()
	a2, err := m.Attach(ticket("bob", "s1"), c2, termproto.PathRelayed)
	if err != nil {
		t.Fatal(err)
	}
	if h := <-c2.frames; h[0] != termproto.Hello || !bytes.Contains(h, []byte(`"reattached":true`)) {
		t.Fatalf("hello %q", h)
	}
	c2.waitOutput(t, "42\r\n") // from the scrollback
	if m.Sessions() != 1 {
		t.Fatalf("%d sessions, want 1", m.Sessions())
	}
	// Attached, the session outlives the idle timeout.
	time.Sleep(800 * time.Millisecond)
	if m.Sessions() != 1 {
		t.Fatal("an attached session ended at the idle timeout")
	}
	a2.Detach()
	deadline := time.Now().Add(10 * time.Second)
	for m.Sessions() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("a detached session outlived the idle timeout")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSessionExit: the shell's exit reaches the client and ends the
// session.
func TestSessionExit(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, time.Minute)
	c := newChanTransport()
	a, err := m.Attach(ticket("bob", "s2"), c, termproto.PathDirect)
	if err != nil {
		t.Fatal(err)
	}
	a.Handle(termproto.Frame(termproto.Input, []byte("exit 3\n")))
	timeout := time.After(10 * time.Second)
	for {
		select {
		case f := <-c.frames:
			if f[0] == termproto.Exit {
				if string(f[1:]) != "3" {
					t.Fatalf("exit frame %q", f)
				}
				<-c.closed
				return
			}
		case <-timeout:
			t.Fatal("no exit frame")
		}
	}
}
