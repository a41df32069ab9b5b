// Package webterm serves the browser terminal on the agent: reconnecting
// shell sessions keyed by a session id, each keeping its pseudo-terminal
// and a bounded scrollback while no browser is attached; attached over a
// WebRTC data channel (direct) or a WebSocket the agent dials back to
// the coordinator (relayed). Every attach needs a ticket signed by the
// coordinator (internal/termproto).
package webterm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/devmesh/devmesh/internal/termproto"
)

// Defaults of Options.
const (
	DefaultScrollback  = 64 << 10
	DefaultIdleTimeout = 5 * time.Minute
	DefaultMaxSessions = 16
)

// sendQueue is how many frames may wait for a slow client; past that
// the client is dropped (it reattaches and gets the scrollback).
const sendQueue = 512

var (
	errTooManySessions = errors.New("too many terminal sessions on this agent; close one")
	errSessionUser     = fmt.Errorf("%w: the session belongs to another user", termproto.ErrTicket)
	errClosed          = errors.New("the terminal service is closed")
)

// Shell is a running shell on a pseudo-terminal (*sshd.Terminal).
type Shell interface {
	io.Writer
	Resize(cols, rows uint16) error
	Done() <-chan struct{}
	ExitCode() int
	Close() error
}

// StartShell starts a shell whose output goes to out.
type StartShell func(out io.Writer) (Shell, error)

// transport carries frames to one client. Send may block; Close makes
// it and the transport's reader return.
type transport interface {
	Send(frame []byte) error
	Close() error
}

// Manager owns the agent's terminal sessions.
type Manager struct {
	start       StartShell
	scrollback  int
	idleTimeout time.Duration
	maxSessions int
	log         *slog.Logger

	mu       sync.Mutex
	sessions map[string]*session // guarded by mu
	closed   bool                // guarded by mu
	wg       sync.WaitGroup      // session goroutines
}

// ManagerOptions configures a Manager; zero fields take the defaults.
type ManagerOptions struct {
	Start       StartShell
	Scrollback  int
	IdleTimeout time.Duration
	MaxSessions int
	Logger      *slog.Logger
}

// NewManager validates o.
func NewManager(o ManagerOptions) (*Manager, error) {
	if o.Start == nil {
		return nil, errors.New("webterm: Start is required")
	}
	if o.Scrollback <= 0 {
		o.Scrollback = DefaultScrollback
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{start: o.Start, scrollback: o.Scrollback, idleTimeout: o.IdleTimeout, maxSessions: o.MaxSessions,
		log: o.Logger, sessions: map[string]*session{}}, nil
}

// Sessions returns the number of live sessions.
func (m *Manager) Sessions() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}

// Attach attaches tr to the ticket's session, starting a shell if the
// session does not exist, and returns the attachment to feed the
// client's frames to. A client already attached is detached.
func (m *Manager) Attach(t termproto.Ticket, tr transport, path string) (*Attachment, error) {
	s, fresh, err := m.session(t)
	if err != nil {
		return nil, err
	}
	a := newAttachment(s, tr)
	if !s.attach(a, termproto.HelloMsg{Session: t.SessionID, Reattached: !fresh, Path: path}) {
		a.stop()
		return nil, errors.New("the session has ended")
	}
	m.log.Info("terminal attached", "session", t.SessionID, "user", t.User, "path", path, "reattached", !fresh)
	return a, nil
}

// session returns the ticket's session, starting it if needed.
func (m *Manager) session(t termproto.Ticket) (*session, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, false, errClosed
	}
	if s, ok := m.sessions[t.SessionID]; ok {
		if s.user != t.User {
			return nil, false, errSessionUser
		}
		return s, false, nil
	}
	if len(m.sessions) >= m.maxSessions {
		return nil, false, errTooManySessions
	}
	s := &session{id: t.SessionID, user: t.User, m: m, ring: newRing(m.scrollback)}
	sh, err := m.start(s)
	if err != nil {
		return nil, false, fmt.Errorf("start the shell: %w", err)
	}
	s.shell = sh
	s.idle = time.AfterFunc(m.idleTimeout, s.expire)
	m.sessions[s.id] = s
	m.wg.Go(s.wait)
	return s, true, nil
}

// remove forgets s if it is still the session of its id.
func (m *Manager) remove(s *session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sessions[s.id] == s {
		delete(m.sessions, s.id)
	}
}

// Close ends every session and waits for them. It is idempotent.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	all := make([]*session, 0, len(m.sessions))
	for _, s := range m.sessions {
		all = append(all, s)
	}
	m.mu.Unlock()
	for _, s := range all {
		s.shell.Close()
	}
	m.wg.Wait()
	return nil
}

// session is one shell and its scrollback. It lives until the shell
// exits or no client has been attached for the idle timeout.
type session struct {
	id, user string
	m        *Manager
	shell    Shell // set before the session is shared

	mu   sync.Mutex
	ring *ring       // guarded by mu
	att  *Attachment // the attached client or nil; guarded by mu
	idle *time.Timer // runs while detached; guarded by mu
	done bool        // the shell has exited; guarded by mu
}

// Write is the shell's output: kept in the scrollback and queued for the
// attached client.
func (s *session) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ring.Write(p)
	if s.att != nil {
		s.att.queueOutput(p)
	}
	return len(p), nil
}

// attach makes a the attached client, replaying the scrollback to it
// first. It reports false if the shell has exited.
func (s *session) attach(a *Attachment, hello termproto.HelloMsg) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return false
	}
	if s.att != nil {
		s.att.stop()
	}
	s.att = a
	if s.idle != nil {
		s.idle.Stop()
	}
	b, _ := json.Marshal(hello)
	a.queue(termproto.Frame(termproto.Hello, b))
	a.queueOutput(s.ring.Bytes())
	return true
}

// detach forgets a if it is still attached and starts the idle timer.
func (s *session) detach(a *Attachment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.att != a {
		return
	}
	s.att = nil
	if !s.done {
		s.idle.Reset(s.m.idleTimeout)
	}
}

// expire ends the session when it has stayed detached.
func (s *session) expire() {
	s.mu.Lock()
	attached := s.att != nil
	s.mu.Unlock()
	if !attached {
		s.m.log.Info("terminal session idle; ending it", "session", s.id)
		s.shell.Close()
	}
}

// wait reaps the shell, tells the attached client, and forgets the
// session.
func (s *session) wait() {
	<-s.shell.Done()
	s.m.remove(s)
	s.mu.Lock()
	s.done = true
	s.idle.Stop()
	if a := s.att; a != nil {
		a.queue(termproto.Frame(termproto.Exit, []byte(strconv.Itoa(s.shell.ExitCode()))))
		a.finish()
		s.att = nil
	}
	s.mu.Unlock()
	s.shell.Close()
	s.m.log.Info("terminal session ended", "session", s.id)
}
