package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/tailscale/wireguard-go/tun"
	"tailscale.com/ipn/ipnstate"

	"github.com/devmesh/devmesh/internal/buildinfo"
	"github.com/devmesh/devmesh/node"
	"github.com/devmesh/devmesh/tunnel/vpn"
)

// Options configures a Daemon.
type Options struct {
	// ControlURL is the coordinator. Required.
	ControlURL string
	// StateDir keeps the node's keys (in StateDir/node) and the lock
	// that keeps a second daemon out. Required.
	StateDir string
	// SocketPath is the local API's socket. Required.
	SocketPath string
	// User is the login name the node is registered for (reported in
	// Status, so that a CLI logged in as someone else does not use it).
	User string
	// Hostname presented to the coordinator (default: the OS hostname).
	Hostname string
	// AuthKey mints an auth key to register the node when StateDir holds
	// no node state yet. Required.
	AuthKey func(ctx context.Context) (string, error)
	// ControlTLS, if set, is the TLS configuration (a pinned self-signed
	// certificate) for an https ControlURL; see node.Options.ControlTLS.
	ControlTLS *tls.Config
	// StartTimeout bounds bringing the node up (default 30s).
	StartTimeout time.Duration
	// Logger receives the daemon's logs; tailscale's go at debug level.
	Logger *slog.Logger
	// VPNInterface is VPN mode's TUN device (default vpn.DefaultInterface).
	VPNInterface string
}

// Daemon is the background node and its local API. Create it with New,
// run it with Run.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	peers   *peerTable
	ready   chan struct{} // closed once the socket listens
	started time.Time

	streams sync.WaitGroup // hijacked dial streams and event streams

	// vpnMu serializes switches between plain and VPN mode (held while
	// the node restarts, which nodeMu must not be).
	vpnMu sync.Mutex

	nodeMu   sync.RWMutex  // guards node, nodeSet, host and vpnState
	node     *node.Node    // the running node; nil only during a switch
	nodeSet  chan struct{} // closed while node is set
	host     *vpn.Host     // VPN mode's host configuration; nil in plain mode
	vpnState *vpn.State    // what VPN mode set up; nil in plain mode
}

// New validates opts. It starts nothing.
func New(opts Options) (*Daemon, error) {
	if !supported {
		return nil, ErrUnsupported
	}
	switch {
	case opts.ControlURL == "":
		return nil, errors.New("daemon: ControlURL is required")
	case opts.StateDir == "" || opts.SocketPath == "":
		return nil, errors.New("daemon: StateDir and SocketPath are required")
	case opts.AuthKey == nil:
		return nil, errors.New("daemon: AuthKey is required")
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 30 * time.Second
	}
	if opts.Hostname == "" {
		opts.Hostname, _ = os.Hostname()
	}
	if opts.VPNInterface == "" {
		opts.VPNInterface = vpn.DefaultInterface
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Daemon{opts: opts, log: log, peers: newPeerTable(), ready: make(chan struct{}), nodeSet: make(chan struct{})}, nil
}

// Ready is closed once the local API listens.
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// Run takes the state directory's lock, brings the node up, serves the
// local API until ctx ends, then shuts everything down and removes the
// socket. It fails at once if another daemon runs.
func (d *Daemon) Run(ctx context.Context) error {
	if err := os.MkdirAll(d.opts.StateDir, 0o700); err != nil {
		return fmt.Errorf("create the state directory: %w", err)
	}
	unlock, err := lockState(d.opts.StateDir)
	if err != nil {
		return err
	}
	defer unlock()
	if err := d.clearSocket(); err != nil {
		return err
	}
	vpnWanted := d.cleanVPNLeftovers()
	n, err := d.startNode(ctx, nil)
	if err != nil {
		return err
	}
	d.swap(n, nil, nil)
	defer d.shutdownNode(vpnWanted)
	d.started = time.Now()
	ln, err := listenSocket(d.opts.SocketPath)
	if err != nil {
		return err
	}
	defer os.Remove(d.opts.SocketPath)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { d.watch(ctx) })
	srv := &http.Server{
		Handler:           d.handler(),
		ConnContext:       withPeerUID,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: 10 * time.Second,
	}
	served := make(chan error, 1)
	wg.Go(func() { served <- srv.Serve(ln) })
	v4, v6 := n.Addrs()
	d.log.Info("daemon running", "socket", d.opts.SocketPath, "ipv4", v4, "ipv6", v6, "user", d.opts.User)
	if vpnWanted {
		if _, err := d.vpnUp(ctx); err != nil {
			d.log.Error("could not bring VPN mode back up; running without it (devmesh vpn up to retry)", "err", err)
		}
	}
	close(d.ready)
	select {
	case <-ctx.Done():
		err = nil
	case err = <-served:
		err = fmt.Errorf("serve the local API: %w", err)
	}
	cancel() // ends the watch, event streams and dial streams
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	srv.Shutdown(sctx)
	wg.Wait()
	d.streams.Wait()
	d.log.Info("daemon stopped")
	return err
}

// watch follows the node's netmap until ctx ends.
func (d *Daemon) watch(ctx context.Context) {
	for ctx.Err() == nil {
		n, err := d.nodeWait(ctx)
		if err != nil {
			return
		}
		err = n.WatchPeers(ctx, func(st *ipnstate.Status) {
			d.peers.set(st)
			d.log.Debug("netmap changed", "state", st.BackendState, "peers", len(st.Peer))
		})
		if ctx.Err() != nil {
			return
		}
		d.log.Warn("watching the netmap failed; retrying", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// startNode brings the node up on the saved state, registering it with
// a fresh auth key the first time.
func (d *Daemon) startNode(ctx context.Context, dev tun.Device) (*node.Node, error) {
	dir := filepath.Join(d.opts.StateDir, "node")
	var key string
	registered := node.HasState(dir)
	if !registered {
		k, err := d.opts.AuthKey(ctx)
		if err != nil {
			return nil, fmt.Errorf("register this device: %w", err)
		}
		key = k
	}
	sctx, cancel := context.WithTimeout(ctx, d.opts.StartTimeout)
	defer cancel()
	n, err := node.Start(sctx, node.Options{
		ControlURL: d.opts.ControlURL,
		ControlTLS: d.opts.ControlTLS,
		AuthKey:    key,
		Dir:        dir,
		Hostname:   d.opts.Hostname,
		Logger:     d.log,
		Tun:        dev,
	})
	if err == nil {
		return n, nil
	}
	if ctx.Err() == nil && sctx.Err() != nil {
		why := "the coordinator is unreachable"
		if registered {
			why += ", or this device's registration expired (remove " + dir + " to register it again; it then gets a new address)"
		}
		return nil, fmt.Errorf("the tailnet node did not come up within %v: %s", d.opts.StartTimeout, why)
	}
	return nil, err
}

// cleanVPNLeftovers undoes what a VPN mode that did not shut down left
// behind, and reports whether VPN mode was on (to be brought back).
func (d *Daemon) cleanVPNLeftovers() (wanted bool) {
	st, ok, err := vpn.ReadState(d.vpnStateFile())
	if err != nil {
		d.log.Warn("unreadable VPN state file; removing it", "err", err)
		os.Remove(d.vpnStateFile())
		return false
	}
	if !ok {
		return false
	}
	if st.Clean {
		os.Remove(d.vpnStateFile())
		return st.Up
	}
	if err := vpn.Cleanup(d.log, d.vpnStateFile()); err != nil {
		d.log.Warn("could not clean up after the last VPN mode (devmesh vpn down retries)", "err", err)
	}
	return st.Up
}

// shutdownNode closes the node at the daemon's end. VPN mode is undone,
// and remembered (a clean state file) so that the next start brings it
// back.
func (d *Daemon) shutdownNode(vpnWasWanted bool) {
	d.vpnMu.Lock()
	defer d.vpnMu.Unlock()
	if st := d.vpnStatus(); st.Up {
		if err := d.closeVPN(); err != nil {
			d.log.Error("undoing VPN mode at exit", "err", err)
			return
		}
		if err := vpn.WriteState(d.vpnStateFile(), vpn.State{Up: true, Interface: st.Interface, Clean: true}); err != nil {
			d.log.Warn("could not remember VPN mode for the next start", "err", err)
		}
		return
	}
	if n := d.current(); n != nil {
		n.Close()
	}
}

// clearSocket makes way for the socket: a daemon answering on it means
// one runs already; a socket file nobody answers on is stale and goes.
func (d *Daemon) clearSocket() error {
	path := d.opts.SocketPath
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket: remove it or choose another --socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%w (it answers on %s)", ErrAlreadyRunning, path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("check %s: %w", path, err)
	}
	d.log.Info("removing a stale socket file (no daemon answers on it)", "socket", path)
	return os.Remove(path)
}

// listenSocket listens on path with mode 0600 in a 0700 directory.
func listenSocket(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// status builds /v1/status.
func (d *Daemon) status() Status {
	state, peers, _ := d.peers.snapshot()
	var v4, v6 netip.Addr
	if n := d.current(); n != nil {
		v4, v6 = n.Addrs()
	} else {
		state = "Switching"
	}
	st := Status{
		VPN:        d.vpnStatus(),
		APIVersion: APIVersion, Version: buildinfo.Version(), PID: os.Getpid(), Started: d.started,
		ControlURL: d.opts.ControlURL, User: d.opts.User, Hostname: d.opts.Hostname,
		State: state, Peers: peers,
	}
	for _, a := range []netip.Addr{v4, v6} {
		if a.IsValid() {
			st.Addrs = append(st.Addrs, a)
		}
	}
	if st.Peers == nil {
		st.Peers = []node.Peer{}
	}
	return st
}
