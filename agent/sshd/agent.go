//go:build unix

package sshd

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// agentListener is a session's SSH_AUTH_SOCK: a unix socket in a private
// directory whose connections are relayed to the client's ssh-agent over
// "auth-agent@openssh.com" channels.
type agentListener struct {
	dir  string
	path string
	ln   net.Listener
}

// listenAgent creates the socket and starts relaying. The caller must call
// close, which the session does when it ends.
func (c *conn) listenAgent() (*agentListener, error) {
	a, err := c.listenAgentSocket()
	if err != nil {
		return nil, fmt.Errorf("agent forwarding (-A) is unavailable: %w", err)
	}
	return a, nil
}

func (c *conn) listenAgentSocket() (*agentListener, error) {
	// A unix socket path is limited to 108 bytes; a long $TMPDIR would
	// exceed it.
	base := os.TempDir()
	if len(base) > 64 {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "devmesh-ssh-agent-") // mode 0700
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "agent.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c.s.wg.Go(func() { c.relayAgent(ln) })
	return &agentListener{dir: dir, path: path, ln: ln}, nil
}

func (c *conn) relayAgent(ln net.Listener) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			return // closed by the session
		}
		c.s.wg.Go(func() {
			ch, reqs, err := c.ssh.OpenChannel("auth-agent@openssh.com", nil)
			if err != nil {
				c.log.Debug("ssh: open agent channel", "err", err)
				nc.Close()
				return
			}
			proxy(c.ctx, ch, reqs, nc)
		})
	}
}

func (a *agentListener) close() {
	a.ln.Close()
	os.RemoveAll(a.dir)
}
