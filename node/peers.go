package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"tailscale.com/net/tsaddr"
)

// ErrNoPeer is returned when a destination is not a peer in the netmap:
// it does not exist, or this node may not reach it.
var ErrNoPeer = errors.New("no such peer in this node's netmap (unknown, or not permitted)")

// resolvePeer turns "host:port" into a peer's tailnet ip:port, waiting
// for the peer to appear in the netmap until ctx ends.
func (n *Node) resolvePeer(ctx context.Context, addr string) (netip.AddrPort, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port %q", portStr)
	}
	ip, err := netip.ParseAddr(host)
	if err == nil && !tsaddr.IsTailscaleIP(ip) {
		return netip.AddrPort{}, fmt.Errorf("%v is not a tailnet address", ip)
	}
	for {
		st, err := n.lc.Status(ctx)
		if err != nil {
			return netip.AddrPort{}, err
		}
		if found, ok := FindPeer(Peers(st), host); ok {
			return netip.AddrPortFrom(found, uint16(port)), nil
		}
		select {
		case <-ctx.Done():
			return netip.AddrPort{}, fmt.Errorf("%s: %w", host, ErrNoPeer)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// primeBudget bounds how long the first Dial to a peer waits for the
// peer to know this node.
const primeBudget = 3 * time.Second

// reversePathSlack is added to twice the pong's latency while the peer
// finds its way back (see WaitReachable).
const reversePathSlack = 20 * time.Millisecond

// WaitReachable disco-pings the peer until it answers, for at most 3 s,
// once per peer (Dial calls it before the first connection). A node that
// just joined can learn of a peer before that peer learns of it; a
// WireGuard handshake sent in that window is dropped and only retried
// after 5 s. Disco pings (relayed until a direct path exists) are
// answered only once the peer knows this node, so one pong means the
// handshake that follows is accepted. It returns an error if the peer
// never answered; callers may still try to connect.
func (n *Node) WaitReachable(ctx context.Context, ip netip.Addr) error {
	n.primedMu.Lock()
	done := n.primed[ip]
	n.primedMu.Unlock()
	if done {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, primeBudget)
	defer cancel()
	var err error
	var res PingResult
	for {
		pctx, pcancel := context.WithTimeout(ctx, 250*time.Millisecond)
		res, err = n.Ping(pctx, ip)
		pcancel()
		if err == nil || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err == nil && res.Direct {
		// A pong over UDP means the peer knows this node, not that it
		// can send to it: until its netmap has this node's home relay
		// or endpoints, or its own disco ping back (sent when our ping
		// arrived) gets a pong, it has no path here, and a WireGuard
		// handshake response it sends meanwhile is dropped ("no UDP or
		// DERP addr"), the handshake retried only after 5 s. That ping
		// ends about half a round trip after our pong: give it that,
		// with room for a loaded machine. (Over DERP the peer answers
		// through the relay our ping came by, so there is no wait.)
		grace := min(2*res.Latency+reversePathSlack, primeBudget/10)
		select {
		case <-ctx.Done():
		case <-time.After(grace):
		}
	}
	// Mark the peer even when it never answered: the dials that follow
	// will tell, without paying this wait again.
	n.primedMu.Lock()
	if n.primed == nil {
		n.primed = map[netip.Addr]bool{}
	}
	n.primed[ip] = true
	n.primedMu.Unlock()
	if err != nil {
		return fmt.Errorf("peer %v did not answer disco pings: %w", ip, err)
	}
	return nil
}

// HostPrefixes returns the valid addresses among addrs as host prefixes
// (/32, /128).
func HostPrefixes(addrs ...netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range addrs {
		if a.IsValid() {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out
}
