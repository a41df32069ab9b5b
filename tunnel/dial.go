package tunnel

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/devmesh/devmesh/node"
)

// warmUpTimeout bounds WarmUp.
const warmUpTimeout = 3 * time.Second

// Dial connects to ip:port over n, after WarmUp.
func Dial(ctx context.Context, n *node.Node, network string, ip netip.Addr, port uint16) (net.Conn, error) {
	WarmUp(ctx, n, ip)
	return n.Dial(ctx, network, netip.AddrPortFrom(ip, port).String())
}

// WarmUp disco-pings ip until it answers, for at most a few seconds. Right
// after a node starts, its peer may not have it in its netmap yet: a
// connection made then loses its first WireGuard handshake and waits five
// seconds for the retry, where quick pings get through within
// milliseconds of both sides knowing each other. A peer that does not
// answer is left to the dial that follows.
func WarmUp(ctx context.Context, n *node.Node, ip netip.Addr) {
	pingOnce(ctx, n, ip, warmUpTimeout)
}
