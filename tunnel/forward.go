package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/devmesh/devmesh/agent/udprelay"
)

// DialFunc dials over the tailnet, like (*node.Node).Dial.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// ForwardOptions configures ListenForwards.
type ForwardOptions struct {
	Specs []ForwardSpec
	// Logger receives per-connection logs; nil discards them.
	Logger *slog.Logger
	// UDPIdleTimeout ends a UDP session (one local client address) after
	// it has been quiet this long. Default 60s.
	UDPIdleTimeout time.Duration
	// DialTimeout bounds each dial (default 30s).
	DialTimeout time.Duration
	// Errors gets one line for each TCP connection that could not be
	// forwarded (nothing listens on the port in the workspace, say);
	// nil: none. Writes to it are serialized.
	Errors io.Writer
}

// Forwarder serves port forwards. Create it with ListenForwards (which
// binds the local listeners), run it with Run, stop it with Close.
type Forwarder struct {
	opts   ForwardOptions
	log    *slog.Logger
	addrs  []netip.AddrPort
	dialer DialFunc // set by Run before it starts any goroutine
	// lns and pcs hold each spec's listener (TCP) or socket (UDP), by
	// index; written only by ListenForwards.
	lns []net.Listener
	pcs []*net.UDPConn

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine Run starts

	mu     sync.Mutex
	open   map[io.Closer]struct{} // guarded by mu: listeners, connections, UDP sessions
	closed bool                   // guarded by mu

	errMu sync.Mutex // serializes writes to opts.Errors
}

// ListenForwards validates the specs and binds every local listener. On
// any error it closes what it opened: either all forwards start or none.
func ListenForwards(opts ForwardOptions) (*Forwarder, error) {
	if len(opts.Specs) == 0 {
		return nil, errors.New("no forwards given")
	}
	if err := CheckForwardSpecs(opts.Specs); err != nil {
		return nil, err
	}
	if opts.UDPIdleTimeout <= 0 {
		opts.UDPIdleTimeout = 60 * time.Second
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 30 * time.Second
	}
	f := &Forwarder{opts: opts, log: opts.Logger, open: map[io.Closer]struct{}{}}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	for _, s := range opts.Specs {
		addr, err := f.listen(s)
		if err != nil {
			f.Close()
			if errors.Is(err, syscall.EADDRINUSE) {
				return nil, &PortInUseError{Spec: s, Free: freePort(s), Err: err}
			}
			return nil, fmt.Errorf("listen on %s %s: %w", s.Network, s.Listen, err)
		}
		f.addrs = append(f.addrs, addr)
	}
	return f, nil
}

func (f *Forwarder) listen(s ForwardSpec) (netip.AddrPort, error) {
	switch s.Network {
	case "tcp":
		ln, err := net.Listen("tcp", s.Listen.String())
		if err != nil {
			return netip.AddrPort{}, err
		}
		f.lns = append(f.lns, ln)
		f.pcs = append(f.pcs, nil)
		f.open[ln] = struct{}{}
		return ln.Addr().(*net.TCPAddr).AddrPort(), nil
	case "udp":
		pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(s.Listen))
		if err != nil {
			return netip.AddrPort{}, err
		}
		f.lns = append(f.lns, nil)
		f.pcs = append(f.pcs, pc)
		f.open[pc] = struct{}{}
		return pc.LocalAddr().(*net.UDPAddr).AddrPort(), nil
	}
	return netip.AddrPort{}, fmt.Errorf("unknown network %q", s.Network)
}

// Addrs returns the bound local addresses, in the order of the specs
// (useful when a spec asked for port 0).
func (f *Forwarder) Addrs() []netip.AddrPort { return f.addrs }

// Run forwards to the given ports of remote, reached with dial (usually
// a node's Dial): TCP to remote's port (which the agent takes to the
// workspace's loopback when it does not serve that port itself), UDP
// through the agent's UDP relay (package udprelay) to that port on the
// workspace's loopback. It runs until ctx ends or Close is called; then it closes the
// forwarder and returns nil. It returns an error if a listener fails. Run
// may be called once.
func (f *Forwarder) Run(ctx context.Context, dial DialFunc, remote netip.Addr) error {
	f.dialer = dial
	errc := make(chan error, len(f.opts.Specs))
	relay := netip.AddrPortFrom(remote, udprelay.Port).String()
	for i, s := range f.opts.Specs {
		remote := net.JoinHostPort(remote.String(), strconv.Itoa(int(s.RemotePort)))
		if !f.goTracked(func() {
			if s.Network == "tcp" {
				errc <- f.serveTCP(f.lns[i], remote)
			} else {
				errc <- f.serveUDP(f.pcs[i], relay, s.RemotePort)
			}
		}) {
			return nil
		}
	}
	var err error
	select {
	case <-ctx.Done():
	case <-f.ctx.Done():
	case err = <-errc:
	}
	f.Close()
	return err
}

// Close stops every forward and waits for its goroutines. It is
// idempotent.
func (f *Forwarder) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	closers := make([]io.Closer, 0, len(f.open))
	for c := range f.open {
		closers = append(closers, c)
	}
	f.mu.Unlock()
	f.cancel()
	for _, c := range closers {
		c.Close()
	}
	f.wg.Wait()
	return nil
}

// goTracked runs fn in a goroutine counted in wg, unless f is closed.
func (f *Forwarder) goTracked(fn func()) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		fn()
	}()
	return true
}

// track records c for Close; it fails (and closes c) once f is closed.
func (f *Forwarder) track(c io.Closer) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		c.Close()
		return false
	}
	f.open[c] = struct{}{}
	return true
}

func (f *Forwarder) untrack(c io.Closer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.open, c)
}

func (f *Forwarder) dial(network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(f.ctx, f.opts.DialTimeout)
	defer cancel()
	return f.dialer(ctx, network, addr)
}

func (f *Forwarder) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// serveTCP accepts connections on ln and bridges each to remote.
func (f *Forwarder) serveTCP(ln net.Listener, remote string) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if f.isClosed() {
				return nil
			}
			return err
		}
		if !f.track(c) {
			return nil
		}
		f.goTracked(func() {
			defer f.untrack(c)
			defer c.Close()
			f.bridgeTCP(c, remote)
		})
	}
}

func (f *Forwarder) bridgeTCP(local net.Conn, remote string) {
	rc, err := f.dial("tcp", remote)
	if err != nil {
		f.log.Warn("port-forward: dial", "from", local.RemoteAddr(), "to", remote, "err", err)
		f.reportDialError(local.RemoteAddr(), remote, err)
		return
	}
	if !f.track(rc) {
		return
	}
	defer f.untrack(rc)
	defer rc.Close()
	f.log.Debug("port-forward: connection", "from", local.RemoteAddr(), "to", remote)
	var wg sync.WaitGroup
	wg.Go(func() { copyHalfClose(rc, local) })
	copyHalfClose(local, rc)
	wg.Wait()
}

// copyHalfClose copies src to dst, then sends EOF on dst (or closes it
// when it cannot half-close).
func copyHalfClose(dst, src net.Conn) {
	io.Copy(dst, src)
	if cw, ok := dst.(closeWriter); ok {
		cw.CloseWrite()
	} else {
		dst.Close()
	}
}
