package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
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
	// The first pong's result (pings overlap; later ones are ignored).
	var (
		resMu sync.Mutex
		res   PingResult
		got   bool
	)
	err := firstPong(ctx, pingSchedule, func(ctx context.Context) error {
		r, err := n.Ping(ctx, ip)
		if err == nil {
			resMu.Lock()
			defer resMu.Unlock()
			if !got {
				res, got = r, true
			}
		}
		return err
	})
	resMu.Lock()
	first := res
	resMu.Unlock()
	if err == nil && first.Direct {
		// A pong over UDP means the peer knows this node, not that it
		// can send to it: until its netmap has this node's home relay
		// or endpoints, or its own disco ping back (sent when our ping
		// arrived) gets a pong, it has no path here, and a WireGuard
		// handshake response it sends meanwhile is dropped ("no UDP or
		// DERP addr"), the handshake retried only after 5 s. That ping
		// ends about half a round trip after our pong: give it that,
		// with room for a loaded machine. (Over DERP the peer answers
		// through the relay our ping came by, so there is no wait.)
		grace := min(2*first.Latency+reversePathSlack, primeBudget/10)
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

// pingSchedule is when WaitReachable sends its disco pings, from the
// start: often at first, since the peer usually learns of this node
// within tens of milliseconds, then more sparsely.
var pingSchedule = []time.Duration{0, 30, 60, 90, 120, 160, 200, 250, 300, 400, 500, 700, 900, 1200, 1600, 2000, 2500}

// firstPong runs ping at each offset of schedule (in milliseconds) after
// its start, each running until ctx ends, and returns as soon as one
// succeeds (nil) or all have failed (the last error). Pings overlap:
// one sent before the peer knew this node is dropped and never
// answered, and waiting for it to time out before sending the next
// would cost its whole timeout, however short the round trip, while
// too short a timeout would never see a pong over a slow path.
func firstPong(ctx context.Context, schedule []time.Duration, ping func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel() // ends the pings still waiting
		wg.Wait()
	}()
	results := make(chan error, len(schedule))
	start := time.Now()
	sent, failed := 0, 0
	var lastErr error
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			if lastErr == nil {
				lastErr = ctx.Err()
			}
			return lastErr
		case err := <-results:
			if err == nil {
				return nil
			}
			lastErr, failed = err, failed+1
			if failed == len(schedule) {
				return lastErr
			}
		case <-timer.C:
			wg.Go(func() { results <- ping(ctx) })
			sent++
			if sent < len(schedule) {
				timer.Reset(schedule[sent]*time.Millisecond - time.Since(start))
			}
		}
	}
}
