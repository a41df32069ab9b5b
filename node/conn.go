package node

import (
	"errors"
	"net"
	"net/netip"
)

// The netstack's TCP connections (gvisor's gonet.TCPConn) look their
// addresses up on every RemoteAddr and LocalAddr call and return a nil
// net.Addr once the peer has reset the connection. A caller that logs or
// authorizes by c.RemoteAddr().String() then panics on a nil interface:
// a peer that connects and resets at once could crash an agent. Every
// connection this package hands out therefore carries the addresses it
// had when it was made (addrConn), and a connection accepted already
// dead is closed instead of handed out.

// addrConn is a net.Conn whose addresses are fixed when it is made.
type addrConn struct {
	net.Conn
	local, remote net.Addr
}

func (c *addrConn) LocalAddr() net.Addr  { return c.local }
func (c *addrConn) RemoteAddr() net.Addr { return c.remote }

// errNoHalfClose is returned by CloseWrite and CloseRead when the
// wrapped connection has no such method.
var errNoHalfClose = errors.New("connection cannot half-close")

// CloseWrite half-closes the connection (gonet.TCPConn can), so code
// that sends EOF through an interface assertion keeps working.
func (c *addrConn) CloseWrite() error {
	if hc, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return hc.CloseWrite()
	}
	return errNoHalfClose
}

// CloseRead is CloseWrite's counterpart.
func (c *addrConn) CloseRead() error {
	if hc, ok := c.Conn.(interface{ CloseRead() error }); ok {
		return hc.CloseRead()
	}
	return errNoHalfClose
}

// withAddrs fixes c's addresses: those c reports now, or where it has
// none, the given ones (which may be zero). It reports false if c has no
// remote address and none was given: the connection is already gone.
func withAddrs(c net.Conn, local, remote netip.AddrPort) (*addrConn, bool) {
	ac := &addrConn{Conn: c, local: c.LocalAddr(), remote: c.RemoteAddr()}
	if ac.local == nil {
		ac.local = tcpAddr(local)
	}
	if ac.remote == nil {
		if !remote.IsValid() {
			return nil, false
		}
		ac.remote = tcpAddr(remote)
	}
	return ac, true
}

// tcpAddr converts ap; an invalid ap gives an empty (non-nil) address.
func tcpAddr(ap netip.AddrPort) *net.TCPAddr {
	if !ap.IsValid() {
		return &net.TCPAddr{}
	}
	return net.TCPAddrFromAddrPort(ap)
}

// addrListener hands out accepted connections as addrConns and drops
// those whose peer reset them before Accept returned.
type addrListener struct {
	net.Listener
}

func (l addrListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if ac, ok := withAddrs(c, netip.AddrPort{}, netip.AddrPort{}); ok {
			return ac, nil
		}
		c.Close()
	}
}
