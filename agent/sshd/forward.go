package sshd

import (
	"context"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// dialTimeout bounds connecting to a local-forward target (ssh -L).
const dialTimeout = 10 * time.Second

// Payloads of RFC 4254 section 7 and of OpenSSH's streamlocal extensions
// (PROTOCOL, section 2.4).
type (
	directTCPIPData struct {
		DestAddr   string
		DestPort   uint32
		OriginAddr string
		OriginPort uint32
	}
	directStreamLocalData struct {
		SocketPath string
		Reserved0  string
		Reserved1  uint32
	}
	tcpipForwardRequest struct {
		BindAddr string
		BindPort uint32
	}
	streamLocalForwardRequest struct {
		SocketPath string
	}
	forwardedStreamLocalData struct {
		SocketPath string
		Reserved   string
	}
)

// forwardKey names a remote forward the way the client named it, so that
// its cancel request finds it. port is the bound port, also for requests
// of port 0; it is 0 for unix sockets.
type forwardKey struct {
	network string // "tcp" or "unix"
	addr    string // the requested bind address or socket path
	port    uint32
}

// handleDirect serves a "direct-tcpip" (ssh -L, ssh -D) or
// "direct-streamlocal@openssh.com" (ssh -L to a unix socket) channel.
func (c *conn) handleDirect(nc gossh.NewChannel) {
	network, addr := "tcp", ""
	var err error
	if nc.ChannelType() == "direct-tcpip" {
		var d directTCPIPData
		err = gossh.Unmarshal(nc.ExtraData(), &d)
		addr = net.JoinHostPort(d.DestAddr, strconv.FormatUint(uint64(d.DestPort), 10))
	} else {
		var d directStreamLocalData
		err = gossh.Unmarshal(nc.ExtraData(), &d)
		network, addr = "unix", d.SocketPath
	}
	if err != nil {
		_ = nc.Reject(gossh.ConnectionFailed, "malformed request")
		return
	}
	d := net.Dialer{Timeout: dialTimeout}
	target, err := d.DialContext(c.ctx, network, addr)
	if err != nil {
		c.log.Debug("ssh: forward dial failed", "addr", addr, "err", err)
		_ = nc.Reject(gossh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		target.Close()
		return
	}
	c.s.count(&c.s.forwards, 1)
	defer c.s.count(&c.s.forwards, -1)
	proxy(c.ctx, ch, reqs, target)
}

// handleForwardRequest serves the global requests of ssh -R.
func (c *conn) handleForwardRequest(req *gossh.Request) (ok bool, reply []byte) {
	var key forwardKey
	switch req.Type {
	case "tcpip-forward", "cancel-tcpip-forward":
		var r tcpipForwardRequest
		if gossh.Unmarshal(req.Payload, &r) != nil || r.BindPort > 65535 {
			return false, nil
		}
		key = forwardKey{"tcp", r.BindAddr, r.BindPort}
	default: // streamlocal-forward@openssh.com and its cancel
		var r streamLocalForwardRequest
		if gossh.Unmarshal(req.Payload, &r) != nil {
			return false, nil
		}
		key = forwardKey{"unix", r.SocketPath, 0}
	}
	if req.Type == "cancel-tcpip-forward" || req.Type == "cancel-streamlocal-forward@openssh.com" {
		return c.cancelForward(key), nil
	}

	addr := key.addr
	if key.network == "tcp" {
		addr = net.JoinHostPort(c.s.bindHost(key.addr), strconv.FormatUint(uint64(key.port), 10))
	}
	ln, err := net.Listen(key.network, addr)
	if err != nil {
		c.log.Info("ssh: remote forward failed", "addr", addr, "err", err)
		return false, nil
	}
	if key.network == "tcp" && key.port == 0 {
		key.port = uint32(ln.Addr().(*net.TCPAddr).Port)
		reply = gossh.Marshal(&struct{ Port uint32 }{key.port})
	}
	if !c.addForward(key, ln) {
		ln.Close()
		return false, nil
	}
	c.log.Info("ssh: remote forward", "listen", ln.Addr().String())
	c.s.wg.Go(func() { c.serveForward(key, ln) })
	return true, reply
}

func (c *conn) serveForward(key forwardKey, ln net.Listener) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			return // canceled, or the connection ended
		}
		c.s.wg.Go(func() {
			typ, payload := "forwarded-streamlocal@openssh.com", gossh.Marshal(&forwardedStreamLocalData{SocketPath: key.addr})
			if key.network == "tcp" {
				oh, op, _ := net.SplitHostPort(nc.RemoteAddr().String())
				opn, _ := strconv.ParseUint(op, 10, 32)
				typ, payload = "forwarded-tcpip", gossh.Marshal(&directTCPIPData{
					DestAddr: key.addr, DestPort: key.port, OriginAddr: oh, OriginPort: uint32(opn),
				})
			}
			ch, reqs, err := c.ssh.OpenChannel(typ, payload)
			if err != nil {
				c.log.Debug("ssh: open forwarded channel", "err", err)
				nc.Close()
				return
			}
			c.s.count(&c.s.forwards, 1)
			defer c.s.count(&c.s.forwards, -1)
			proxy(c.ctx, ch, reqs, nc)
		})
	}
}

// addForward records ln, unless the connection has ended or key is taken.
func (c *conn) addForward(key forwardKey, ln net.Listener) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.forwards == nil || c.forwards[key] != nil {
		return false
	}
	c.forwards[key] = ln
	return true
}

func (c *conn) cancelForward(key forwardKey) bool {
	c.mu.Lock()
	ln := c.forwards[key]
	delete(c.forwards, key)
	c.mu.Unlock()
	if ln == nil {
		return false
	}
	ln.Close()
	return true
}

// closeForwards closes every remote-forward listener of the connection
// and refuses new ones.
func (c *conn) closeForwards() {
	c.mu.Lock()
	fwds := c.forwards
	c.forwards = nil
	c.mu.Unlock()
	for _, ln := range fwds {
		ln.Close()
	}
}

// bindHost is where a remote forward listens for a requested bind
// address: loopback unless Options.GatewayPorts, like OpenSSH's default.
func (s *Server) bindHost(addr string) string {
	if s.opts.GatewayPorts {
		switch addr {
		case "", "*":
			return ""
		case "localhost":
			return "127.0.0.1"
		}
		return addr
	}
	if ip := net.ParseIP(addr); ip != nil && ip.IsLoopback() {
		return addr
	}
	return "127.0.0.1"
}

// proxy relays between a channel and a network connection, passing each
// direction's EOF on as a half-close, and closes both when both directions
// are done. Once the client closes the channel, reading from nc stops
// while data the channel still buffers is written out; once ctx (the
// connection) ends, nc is closed.
func proxy(ctx context.Context, ch gossh.Channel, reqs <-chan *gossh.Request, nc net.Conn) {
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	closed := make(chan struct{})
	go func() {
		gossh.DiscardRequests(reqs) // returns once the channel is closed
		_ = nc.SetReadDeadline(time.Unix(1, 0))
		close(closed)
	}()
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = io.Copy(ch, nc)
		_ = ch.CloseWrite()
	})
	wg.Go(func() {
		_, _ = io.Copy(nc, ch)
		if cw, ok := nc.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			nc.Close()
		}
	})
	wg.Wait()
	ch.Close()
	nc.Close()
	<-closed
}
