// Package sshd is the workspace agent's SSH server: login shells and
// commands with or without a terminal, SFTP, local and remote port
// forwarding and agent forwarding, for the OpenSSH client, VS Code
// Remote-SSH and JetBrains Gateway. Peers are authenticated by the tailnet;
// the server authorizes each connection through a callback and runs every
// session as the agent's own OS user.
package sshd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

var (
	// ErrServerClosed is returned by Serve after Close.
	ErrServerClosed = errors.New("sshd: server closed")
	// ErrCloseTimeout is returned by Close when sessions did not end in time.
	ErrCloseTimeout = errors.New("sshd: sessions did not end in time")
)

const (
	handshakeTimeout = 30 * time.Second
	// closeTimeout bounds Close; it exceeds killGrace plus drainTimeout,
	// the longest a session takes to end once its channel is gone.
	closeTimeout = 5 * time.Second
)

// Options configures a Server. HostSigner is required.
type Options struct {
	// HostSigner is the server's host key; see LoadOrCreateHostKey.
	HostSigner gossh.Signer
	// Authorize is called for every new connection before the SSH
	// handshake starts. A non-nil error closes the connection. When nil,
	// every connection is rejected; pass AllowAll to accept all.
	Authorize func(ctx context.Context, remote net.Addr) error
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// Env is added to every session's environment, after the defaults
	// (HOME, USER, LOGNAME, SHELL, PATH) and before the client's env
	// requests. The agent's own environment is not inherited, so secrets
	// in it do not leak into sessions.
	Env []string
	// Dir is the sessions' working directory; default (or when it does
	// not exist) the user's home directory, else "/".
	Dir string
	// Shell runs sessions; default the user's login shell, else /bin/sh.
	Shell string
	// OnSession, if set, is called when a session channel opens (true)
	// and closes (false). It must not block.
	OnSession func(start bool)
	// OnChange, if set, is called after the open connections, sessions
	// or forwarded channels (Stats) changed, so that they can be
	// reported at once. It must not block.
	OnChange func()
	// KeepAliveInterval is how often the server checks that a client is
	// still there; after KeepAliveCountMax intervals without an answer
	// the connection is closed and its processes stopped. This catches
	// peers that vanish from the tailnet without closing TCP. Zero means
	// 15s; negative disables.
	KeepAliveInterval time.Duration
	// KeepAliveCountMax: zero means 3.
	KeepAliveCountMax int
	// GatewayPorts lets remote forwards (ssh -R) listen on the address
	// the client asks for. By default they listen on loopback only, like
	// OpenSSH's GatewayPorts=no.
	GatewayPorts bool
}

// AllowAll is an Authorize function that admits every connection. Use it
// only where reaching the listener already proves authorization.
func AllowAll(context.Context, net.Addr) error { return nil }

// Stats are counters of a Server since New.
type Stats struct {
	Connections      int64 // open, authorized connections
	ConnectionsTotal int64
	Sessions         int64 // open session channels
	SessionsTotal    int64
	Forwards         int64 // open forwarded channels (ssh -L, -D, -R)
	RxBytes, TxBytes int64 // SSH protocol bytes read from and written to clients
}

// Server is an SSH server. Create it with New, run it with Serve.
type Server struct {
	opts    Options // defaults filled in
	log     *slog.Logger
	config  *gossh.ServerConfig
	account account
	shell   string
	baseEnv []string

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc

	// wg counts every goroutine the server starts. From outside a counted
	// goroutine, Add only under mu while !closed, so Add never races
	// with Close's Wait.
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	mu     sync.Mutex
	closed bool                   // guarded by mu
	open   map[io.Closer]struct{} // guarded by mu: listeners in Serve, accepted conns

	connections, connectionsTotal atomic.Int64
	sessions, sessionsTotal       atomic.Int64
	forwards                      atomic.Int64
	rxBytes, txBytes              atomic.Int64
}

// New validates opts and prepares a server; it does not listen.
func New(opts Options) (*Server, error) {
	if opts.HostSigner == nil {
		return nil, errors.New("sshd: Options.HostSigner is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.KeepAliveInterval == 0 {
		opts.KeepAliveInterval = 15 * time.Second
	}
	if opts.KeepAliveCountMax <= 0 {
		opts.KeepAliveCountMax = 3
	}
	acct, err := currentAccount()
	if err != nil {
		return nil, fmt.Errorf("sshd: %w", err)
	}
	s := &Server{
		opts:    opts,
		log:     opts.Logger,
		account: acct,
		shell:   chooseShell(opts.Shell, acct.shell),
		open:    map[io.Closer]struct{}{},
	}
	s.baseEnv = baseEnv(acct, s.shell, os.Getenv("PATH"))
	s.ctx, s.cancel = context.WithCancel(context.Background())
	// The tailnet authenticated the peer and Authorize authorized the
	// connection, so SSH user authentication checks nothing: "none",
	// which OpenSSH clients try first, succeeds, and so does any public
	// key, for clients that skip "none".
	s.config = &gossh.ServerConfig{
		NoClientAuth: true,
		PublicKeyCallback: func(gossh.ConnMetadata, gossh.PublicKey) (*gossh.Permissions, error) {
			return nil, nil
		},
		ServerVersion: "SSH-2.0-devmesh",
	}
	s.config.AddHostKey(opts.HostSigner)
	return s, nil
}

// Serve accepts connections on ln until ln fails or the server is closed,
// and closes ln. After Close it returns ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	defer ln.Close()
	if !s.track(ln, false) {
		return ErrServerClosed
	}
	defer s.untrack(ln)
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("ssh: accept", "err", err, "retry_in", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("sshd: accept: %w", err)
		}
		delay = 0
		if !s.track(nc, true) {
			nc.Close()
			return ErrServerClosed
		}
		go func() {
			defer s.wg.Done()
			defer s.untrack(nc)
			defer nc.Close()
			s.serveConn(nc)
		}()
	}
}

// Close stops the server: listeners and connections are closed, and
// running commands get SIGHUP (SIGKILL after a grace period). It waits for
// every goroutine of the server, at most about 5s, and then returns
// ErrCloseTimeout. Close is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		closers := slices.Collect(maps.Keys(s.open))
		s.mu.Unlock()
		s.cancel()
		for _, c := range closers {
			c.Close()
		}
		done := make(chan struct{})
		go func() {
			s.wg.Wait()
			close(done)
		}()
		t := time.NewTimer(closeTimeout)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			s.closeErr = ErrCloseTimeout
		}
	})
	return s.closeErr
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	return Stats{
		Connections:      s.connections.Load(),
		ConnectionsTotal: s.connectionsTotal.Load(),
		Sessions:         s.sessions.Load(),
		SessionsTotal:    s.sessionsTotal.Load(),
		Forwards:         s.forwards.Load(),
		RxBytes:          s.rxBytes.Load(),
		TxBytes:          s.txBytes.Load(),
	}
}

// count adds d to the counter n and tells OnChange.
func (s *Server) count(n *atomic.Int64, d int64) {
	n.Add(d)
	if s.opts.OnChange != nil {
		s.opts.OnChange()
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// track records c for Close to close, and counts a goroutine in wg if
// goroutine is set. It fails once the server is closed.
func (s *Server) track(c io.Closer, goroutine bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.open[c] = struct{}{}
	if goroutine {
		s.wg.Add(1)
	}
	return true
}

func (s *Server) untrack(c io.Closer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.open, c)
}
