package node

import (
	"net"
	"net/netip"
)

// FallbackTCPHandler decides about a TCP connection from src to dst, a
// port of this node that no Listen serves. It returns the function that
// takes the connection over, or nil to refuse it: the peer then sees
// "connection refused", as for any port without a listener. It is called
// before the handshake completes, on a goroutine of its own, so it may
// block briefly (to connect to a backend first, say); the peer's
// handshake waits. The returned function is not called if the handshake
// fails after all.
type FallbackTCPHandler func(src, dst netip.AddrPort) func(net.Conn)

// HandleFallbackTCP sends connections to ports without a listener to h,
// until the returned function is called. Without a handler such
// connections are refused. With several, each is asked in some order
// until one takes the connection. The connection keeps src and dst as
// its addresses (see addrConn).
func (n *Node) HandleFallbackTCP(h FallbackTCPHandler) (unregister func()) {
	return n.ts.RegisterFallbackTCPHandler(func(src, dst netip.AddrPort) (func(net.Conn), bool) {
		take := h(src, dst)
		if take == nil {
			return nil, false
		}
		return func(c net.Conn) {
			ac, _ := withAddrs(c, dst, src) // src is valid: never false
			take(ac)
		}, true
	})
}
