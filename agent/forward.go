package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/devmesh/devmesh/agent/udprelay"
	"github.com/devmesh/devmesh/node"
)

// UDPRelayPort is the tailnet TCP port of the UDP relay (see package
// udprelay), beside SSHPort and SpeedtestPort. It is declared here, not
// with them, to keep agent.go's change to the one line that starts
// serveForwards.
const UDPRelayPort = udprelay.Port

const (
	// forwardDialTimeout bounds the owner check and the connection to
	// the workspace's loopback, which the peer's handshake waits for.
	forwardDialTimeout = 5 * time.Second
	// forwardHandoffTimeout closes a loopback connection the tailnet
	// never handed a peer to (its handshake failed after the dial).
	forwardHandoffTimeout = 10 * time.Second
)

// serveForwards makes the workspace's loopback services reachable from
// the tailnet until ctx ends: a TCP connection to any port of the agent's
// address that the agent does not serve itself goes to that port on
// 127.0.0.1, and UDP goes through the relay on UDPRelayPort. Both admit
// only peers that pass authorize. It returns once every forwarded
// connection has ended.
func (a *Agent) serveForwards(ctx context.Context, n *node.Node, authorize func(context.Context, net.Addr) error) {
	log := a.log.With("component", "forward")
	f := &tcpForwarder{ctx: ctx, authorize: authorize, log: log, count: a.countForward}
	v4, v6 := n.Addrs()
	f.self = map[netip.Addr]bool{v4: true, v6: true}
	unregister := n.HandleFallbackTCP(f.handle)

	var wg sync.WaitGroup
	ln, err := n.Listen("tcp", fmt.Sprintf(":%d", UDPRelayPort))
	if err != nil {
		log.Error("UDP forwarding is off: cannot listen on the relay port", "port", UDPRelayPort, "err", err)
	} else {
		wg.Go(func() {
			udprelay.Serve(ctx, ln, udprelay.ServerOptions{Authorize: authorize, Logger: log})
		})
	}
	<-ctx.Done()
	unregister()
	f.stop()
	wg.Wait()
}

// tcpForwarder takes the tailnet's TCP connections to ports without a
// listener to the same port on the workspace's loopback.
type tcpForwarder struct {
	ctx       context.Context // ends every connection
	authorize func(context.Context, net.Addr) error
	log       *slog.Logger
	self      map[netip.Addr]bool // the agent's tailnet addresses
	// count, if set, is told of each forwarded connection opening (+1)
	// and closing (-1).
	count func(delta int64)

	mu      sync.Mutex // guards stopped and wg.Add
	stopped bool
	wg      sync.WaitGroup
}

// agentPorts are the agent's own services: never forwarded, even while
// their listeners are being closed.
var agentPorts = map[uint16]bool{SSHPort: true, SpeedtestPort: true, UDPRelayPort: true}

// handle checks the peer and connects to the loopback port before the
// peer's handshake completes, so a refused peer, or a port nothing
// listens on, is refused on the tailnet too.
func (f *tcpForwarder) handle(src, dst netip.AddrPort) func(net.Conn) {
	if !f.self[dst.Addr()] || agentPorts[dst.Port()] {
		return nil
	}
	ctx, cancel := context.WithTimeout(f.ctx, forwardDialTimeout)
	defer cancel()
	if err := f.authorize(ctx, net.TCPAddrFromAddrPort(src)); err != nil {
		f.log.Warn("refused a forwarded connection", "from", src, "port", dst.Port(), "err", err)
		return nil
	}
	var d net.Dialer
	lc, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(dst.Port()))))
	if err != nil {
		f.log.Debug("nothing to forward to", "from", src, "port", dst.Port(), "err", err)
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		lc.Close()
		return nil
	}
	f.wg.Add(1)
	handoff := time.AfterFunc(forwardHandoffTimeout, func() {
		lc.Close()
		f.wg.Done()
	})
	return func(c net.Conn) {
		if !handoff.Stop() {
			c.Close()
			return
		}
		defer f.wg.Done()
		f.log.Debug("forwarding a connection", "from", src, "port", dst.Port())
		if f.count != nil {
			f.count(1)
			defer f.count(-1)
		}
		bridge(f.ctx, c, lc)
	}
}

// stop waits for every forwarded connection, which ends with ctx.
func (f *tcpForwarder) stop() {
	f.mu.Lock()
	f.stopped = true
	f.mu.Unlock()
	f.wg.Wait()
}

// bridge copies both ways, passing each side's EOF on, until both
// directions have ended or ctx ends; it closes a and b.
func bridge(ctx context.Context, a, b net.Conn) {
	defer a.Close()
	defer b.Close()
	stop := context.AfterFunc(ctx, func() { a.Close(); b.Close() })
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() { copyThenCloseWrite(a, b) })
	copyThenCloseWrite(b, a)
	wg.Wait()
}

func copyThenCloseWrite(dst, src net.Conn) {
	io.Copy(dst, src)
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		dst.Close()
	}
}
