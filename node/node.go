// Package node is devmesh's one wrapper around tsnet: it starts a tailnet
// node against our coordinator (never a Tailscale-operated service), and
// offers Dial, Listen, Ping (direct vs relayed), status and WhoIs. Every
// tailscale.com quirk lives here.
package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tailscale/wireguard-go/tun"
	"tailscale.com/client/local"
	"tailscale.com/envknob"
	"tailscale.com/ipn"
	"tailscale.com/ipn/ipnstate"
	"tailscale.com/ipn/store/mem"
	"tailscale.com/logtail"
	"tailscale.com/tsnet"

	"github.com/devmesh/devmesh/internal/ownerperm"
)

// Options configures a node.
type Options struct {
	// ControlURL is the coordinator's URL. Required.
	ControlURL string
	// AuthKey registers the node on first start; a node with saved state
	// in Dir reconnects without it.
	AuthKey string
	// Dir keeps the node's state (keys, profile) across restarts. Empty
	// means in-memory state, which implies Ephemeral.
	Dir string
	// Ephemeral asks the coordinator to delete the node once it has been
	// disconnected for a while.
	Ephemeral bool
	// Hostname presented to the coordinator (default: the OS hostname).
	Hostname string
	// Port is the UDP port for WireGuard (0: pick one).
	Port uint16
	// Logger receives tailscale's logs at debug level.
	Logger *slog.Logger
	// ControlTLS, if set, is the TLS configuration for an https
	// ControlURL, e.g. one that pins a self-signed certificate. The
	// control connection then goes through a loopback forwarder (see
	// controlProxy); without it tsnet trusts the system's roots only.
	ControlTLS *tls.Config
	// Tun, if set, is a TUN device the node sends and receives its
	// packets through (VPN mode), instead of only its in-process
	// network stack. The node owns it from Start on and closes it.
	Tun tun.Device
}

// Node is a running tailnet node.
type Node struct {
	ts      *tsnet.Server
	lc      *local.Client
	tempDir string
	proxy   *controlProxy // nil without Options.ControlTLS
	once    sync.Once

	primedMu sync.Mutex // guards primed
	primed   map[netip.Addr]bool

	log    *slog.Logger
	kickAt []time.Duration // kickHandshake's schedule (kickSchedule)
	kicks  atomic.Int64    // WireGuard peers reset by kickHandshake
}

var disableTelemetry = sync.OnceFunc(func() {
	// Never upload logs or contact Tailscale's log service.
	envknob.SetNoLogsNoSupport()
	logtail.Disable()
})

// Start starts a node and waits until it has an address and its netmap
// from the coordinator (see waitNetmap) or ctx ends.
func Start(ctx context.Context, opts Options) (*Node, error) {
	if opts.ControlURL == "" {
		return nil, errors.New("node: ControlURL is required")
	}
	disableTelemetry()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{log: log, kickAt: kickSchedule}
	ts := &tsnet.Server{
		ControlURL: strings.TrimRight(opts.ControlURL, "/"),
		AuthKey:    opts.AuthKey,
		Hostname:   opts.Hostname,
		Ephemeral:  opts.Ephemeral,
		Port:       opts.Port,
		Dir:        opts.Dir,
		Tun:        opts.Tun,
		Logf:       func(format string, args ...any) { log.Debug(fmt.Sprintf(format, args...)) },
		UserLogf:   func(format string, args ...any) { log.Info(fmt.Sprintf(format, args...)) },
	}
	if opts.Dir == "" {
		dir, err := os.MkdirTemp("", "devmesh-node-")
		if err != nil {
			return nil, err
		}
		n.tempDir = dir
		ts.Dir = dir
		ts.Store = new(mem.Store)
		ts.Ephemeral = true
	} else if err := ownerperm.Dir(opts.Dir); err != nil {
		return nil, fmt.Errorf("node state dir: %w", err)
	}
	if opts.ControlTLS != nil {
		p, u, err := startControlProxy(ts.ControlURL, opts.ControlTLS, opts.Dir)
		if err != nil {
			n.Close()
			return nil, err
		}
		n.proxy, ts.ControlURL = p, u
	}
	n.ts = ts
	lc, err := ts.LocalClient() // starts the node
	if err != nil {
		n.Close()
		return nil, err
	}
	n.lc = lc
	if err := waitNetmap(ctx, lc); err != nil {
		n.Close()
		return nil, fmt.Errorf("node did not come up: %w", err)
	}
	return n, nil
}

// waitNetmap waits until the node has its netmap from the coordinator:
// it has its addresses, knows its peers and has configured WireGuard, so
// it can dial them and accept their connections.
//
// tsnet's Up waits for the Running state instead, which tailscale enters
// only once a DERP connection or a peer is live, and the node connects
// to its home DERP only after its first netcheck has picked it. Without
// a STUN reply (STUN disabled on the coordinator, or UDP to it blocked)
// that netcheck waits 3 s for one before falling back to HTTPS, which
// made every cold `devmesh ssh` 3 s slower. Direct paths need neither:
// peers' endpoints come in the netmap and disco pings go to them at once
// (and through the peer's DERP region, connected on demand).
func waitNetmap(ctx context.Context, lc *local.Client) error {
	w, err := lc.WatchIPNBus(ctx, ipn.NotifyInitialState)
	if err != nil {
		return err
	}
	defer w.Close()
	for {
		msg, err := w.Next()
		if err != nil {
			return err
		}
		if msg.ErrMessage != nil {
			return fmt.Errorf("backend: %s", *msg.ErrMessage)
		}
		st, err := lc.StatusWithoutPeers(ctx)
		if err != nil {
			return err
		}
		if (st.BackendState == ipn.Starting.String() || st.BackendState == ipn.Running.String()) && len(st.TailscaleIPs) > 0 {
			return nil
		}
	}
}

// Addrs returns the node's tailnet IPv4 and IPv6 addresses.
func (n *Node) Addrs() (v4, v6 netip.Addr) { return n.ts.TailscaleIPs() }

// Dial connects to addr ("ip:port" or "name:port") over the tailnet. The
// destination must be a peer in this node's netmap: Dial waits (until
// ctx ends) for it to appear, and never falls back to the host network,
// which tsnet would do for an address it does not know.
func (n *Node) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	ap, err := n.resolvePeer(ctx, addr)
	if err != nil {
		return nil, err
	}
	n.WaitReachable(ctx, ap.Addr())
	stop := n.kickHandshake(ap.Addr(), n.kickAt)
	c, err := n.ts.Dial(ctx, network, ap.String())
	stop()
	if err != nil {
		return nil, err
	}
	ac, _ := withAddrs(c, netip.AddrPort{}, ap) // ap is valid: never false
	return ac, nil
}

// Listen listens on the node's tailnet addresses (addr is ":port"). Its
// connections keep the addresses they were accepted with (see addrConn).
func (n *Node) Listen(network, addr string) (net.Listener, error) {
	ln, err := n.ts.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	return addrListener{ln}, nil
}

// ListenPacket listens for UDP on one of the node's tailnet addresses
// (addr is "ip:port").
func (n *Node) ListenPacket(network, addr string) (net.PacketConn, error) {
	return n.ts.ListenPacket(network, addr)
}

// Status returns the node's view of itself and its peers.
func (n *Node) Status(ctx context.Context) (*ipnstate.Status, error) {
	return n.lc.Status(ctx)
}

// LocalClient exposes tailscale's local API client (WhoIs and more).
func (n *Node) LocalClient() *local.Client { return n.lc }

// Close shuts the node down. It is idempotent.
func (n *Node) Close() error {
	var err error
	n.once.Do(func() {
		if n.ts != nil {
			done := make(chan error, 1)
			go func() { done <- n.ts.Close() }()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				err = errors.New("node close timed out")
			}
		}
		if n.proxy != nil {
			n.proxy.Close()
		}
		if n.tempDir != "" {
			os.RemoveAll(n.tempDir)
		}
	})
	return err
}
