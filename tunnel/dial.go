package tunnel

import (
	"context"
	"net"
	"net/netip"

	"github.com/devmesh/devmesh/node"
)

// Tailnet is how a command reaches peers: an in-process node
// (*node.Node) or the background daemon (*daemon.Client).
type Tailnet interface {
	// Dial connects to addr ("ip:port" of a peer) over the tailnet,
	// waiting for the peer to appear in the netmap until ctx ends.
	Dial(ctx context.Context, network, addr string) (net.Conn, error)
	// Ping sends one disco ping to the peer with that address.
	Ping(ctx context.Context, ip netip.Addr) (node.PingResult, error)
	// WaitReachable waits (briefly, once per peer) until the peer knows
	// this node: see node.WaitReachable.
	WaitReachable(ctx context.Context, ip netip.Addr) error
}

var _ Tailnet = (*node.Node)(nil)

// Dial connects to ip:port over tn (which first waits, once per peer, for
// the peer to know this node: see node.WaitReachable).
func Dial(ctx context.Context, tn Tailnet, network string, ip netip.Addr, port uint16) (net.Conn, error) {
	return tn.Dial(ctx, network, netip.AddrPortFrom(ip, port).String())
}
