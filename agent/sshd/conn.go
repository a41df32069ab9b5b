package sshd

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// conn is one authorized SSH connection and what it owns: its channels
// and its remote-forward listeners.
type conn struct {
	s   *Server
	ssh *gossh.ServerConn
	log *slog.Logger
	ctx context.Context // canceled when the connection ends

	mu             sync.Mutex
	forwards       map[forwardKey]net.Listener // guarded by mu; nil once the connection ended
	noMoreSessions bool                        // guarded by mu
}

// serveConn authorizes nc, runs the SSH handshake and serves the
// connection until it closes. The caller closes nc.
func (s *Server) serveConn(nc net.Conn) {
	log := s.log.With("remote", nc.RemoteAddr().String())
	if err := s.authorize(nc.RemoteAddr()); err != nil {
		log.Warn("ssh: connection not authorized", "err", err)
		return
	}
	_ = nc.SetDeadline(time.Now().Add(handshakeTimeout))
	sc, chans, reqs, err := gossh.NewServerConn(&countingConn{Conn: nc, s: s}, s.config)
	if err != nil {
		log.Info("ssh: handshake failed", "err", err)
		return
	}
	_ = nc.SetDeadline(time.Time{})
	defer sc.Close()

	s.connectionsTotal.Add(1)
	s.count(&s.connections, 1)
	defer s.count(&s.connections, -1)
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	c := &conn{
		s:        s,
		ssh:      sc,
		log:      log.With("user", sc.User()),
		ctx:      ctx,
		forwards: map[forwardKey]net.Listener{},
	}
	c.log.Info("ssh: connected", "client", string(sc.ClientVersion()))
	s.wg.Go(func() { c.handleGlobalRequests(reqs) })
	if s.opts.KeepAliveInterval > 0 {
		s.wg.Go(c.keepAlive)
	}
	for nch := range chans { // closed when the connection ends
		c.handleChannel(nch)
	}
	c.closeForwards()
	c.log.Info("ssh: disconnected")
}

func (s *Server) authorize(remote net.Addr) error {
	if s.opts.Authorize == nil {
		return errors.New("no Authorize function configured")
	}
	ctx, cancel := context.WithTimeout(s.ctx, handshakeTimeout)
	defer cancel()
	return s.opts.Authorize(ctx, remote)
}

func (c *conn) handleChannel(nch gossh.NewChannel) {
	switch nch.ChannelType() {
	case "session":
		c.mu.Lock()
		refuse := c.noMoreSessions
		c.mu.Unlock()
		if refuse {
			_ = nch.Reject(gossh.Prohibited, "no more sessions")
			return
		}
		c.s.wg.Go(func() { c.handleSession(nch) })
	case "direct-tcpip", "direct-streamlocal@openssh.com":
		c.s.wg.Go(func() { c.handleDirect(nch) })
	default:
		_ = nch.Reject(gossh.UnknownChannelType, "unsupported channel type")
	}
}

func (c *conn) handleSession(nch gossh.NewChannel) {
	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	c.s.sessionsTotal.Add(1)
	c.s.count(&c.s.sessions, 1)
	defer c.s.count(&c.s.sessions, -1)
	if f := c.s.opts.OnSession; f != nil {
		f(true)
		defer f(false)
	}
	ss := &session{c: c, ch: ch, log: c.log}
	ss.run(reqs)
}

func (c *conn) handleGlobalRequests(reqs <-chan *gossh.Request) {
	for req := range reqs {
		switch req.Type {
		case "tcpip-forward", "cancel-tcpip-forward",
			"streamlocal-forward@openssh.com", "cancel-streamlocal-forward@openssh.com":
			_ = req.Reply(c.handleForwardRequest(req))
		case "no-more-sessions@openssh.com":
			c.mu.Lock()
			c.noMoreSessions = true
			c.mu.Unlock()
			_ = req.Reply(true, nil)
		default:
			// Including keepalive@openssh.com: OpenSSH's sshd refuses it
			// too, and clients count any answer as a sign of life.
			_ = req.Reply(false, nil)
		}
	}
}

// keepAlive closes the connection when the client stops answering
// keepalive requests, so that a peer that vanished without closing TCP
// (common on a tailnet) does not keep its processes running forever.
func (c *conn) keepAlive() {
	interval, limit := c.s.opts.KeepAliveInterval, c.s.opts.KeepAliveCountMax
	t := time.NewTicker(interval)
	defer t.Stop()
	answered := make(chan struct{}, 1)
	pending, missed := false, 0
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-answered:
			pending, missed = false, 0
		case <-t.C:
			if !pending {
				pending = true
				c.s.wg.Go(func() {
					// Any answer counts, a refusal included. SendRequest
					// fails once the connection is closed.
					if _, _, err := c.ssh.SendRequest("keepalive@openssh.com", true, nil); err == nil {
						answered <- struct{}{}
					}
				})
				continue
			}
			if missed++; missed >= limit {
				c.log.Warn("ssh: client stopped answering keepalives, disconnecting")
				c.ssh.Close()
				return
			}
		}
	}
}

// countingConn counts the bytes of a connection into the server's Stats.
type countingConn struct {
	net.Conn
	s *Server
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.s.rxBytes.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.s.txBytes.Add(int64(n))
	return n, err
}
