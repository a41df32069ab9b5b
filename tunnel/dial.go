package tunnel

import (
	"context"
	"net"
	"net/netip"

	"github.com/devmesh/devmesh/node"
)

// Dial connects to ip:port over n (which first waits, once per peer, for
// the peer to know this node: see node.WaitReachable).
func Dial(ctx context.Context, n *node.Node, network string, ip netip.Addr, port uint16) (net.Conn, error) {
	return n.Dial(ctx, network, netip.AddrPortFrom(ip, port).String())
}
