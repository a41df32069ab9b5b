package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/devmesh/devmesh/node"
	"github.com/devmesh/devmesh/tunnel/vpn"
)

// VPNStatus is VPN mode's state in Status.
type VPNStatus struct {
	Up        bool   `json:"up"`
	Interface string `json:"interface,omitempty"`
	// Domain is the tailnet's DNS domain, DNS how the host resolver was
	// configured ("split": systemd-resolved, only that domain;
	// "resolv.conf": the node's resolver listed first).
	Domain string `json:"domain,omitempty"`
	DNS    string `json:"dns,omitempty"`
}

// vpnStateFile is where VPN mode records what it set up.
func (d *Daemon) vpnStateFile() string { return filepath.Join(d.opts.StateDir, "vpn.json") }

// current returns the running node; nil while VPN mode switches.
func (d *Daemon) current() *node.Node {
	d.nodeMu.RLock()
	defer d.nodeMu.RUnlock()
	return d.node
}

// nodeWait returns the running node, waiting (until ctx ends) while VPN
// mode switches.
func (d *Daemon) nodeWait(ctx context.Context) (*node.Node, error) {
	for {
		d.nodeMu.RLock()
		n, set := d.node, d.nodeSet
		d.nodeMu.RUnlock()
		if n != nil {
			return n, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the daemon is switching VPN mode: %w", ctx.Err())
		case <-set:
		}
	}
}

func (d *Daemon) vpnStatus() *VPNStatus {
	d.nodeMu.RLock()
	defer d.nodeMu.RUnlock()
	if d.vpnState == nil {
		return &VPNStatus{}
	}
	st := d.vpnState
	return &VPNStatus{Up: true, Interface: st.Interface, Domain: st.Domain, DNS: st.DNS}
}

// swap installs n (and VPN mode's host configuration and state, nil in
// plain mode) as the daemon's node, returning the previous node.
func (d *Daemon) swap(n *node.Node, h *vpn.Host, st *vpn.State) (old *node.Node, oldHost *vpn.Host) {
	d.nodeMu.Lock()
	defer d.nodeMu.Unlock()
	old, oldHost = d.node, d.host
	d.node, d.host, d.vpnState = n, h, st
	switch {
	case n != nil && old == nil:
		close(d.nodeSet)
	case n == nil && old != nil:
		d.nodeSet = make(chan struct{})
	}
	return old, oldHost
}

// vpnUp switches the node to VPN mode: the node restarts on a TUN device
// (same keys, same address), then routes and DNS are configured. On any
// failure everything is undone and the daemon goes on in plain mode.
func (d *Daemon) vpnUp(ctx context.Context) (*VPNStatus, error) {
	d.vpnMu.Lock()
	defer d.vpnMu.Unlock()
	if d.vpnStatus().Up {
		return d.vpnStatus(), nil
	}
	if err := vpn.Check(); err != nil {
		return nil, err
	}
	if err := vpn.Cleanup(d.log, d.vpnStateFile()); err != nil {
		return nil, err
	}
	// The host side is configured before the node restarts on the
	// device, with the addresses and domain the plain node has (the same
	// keys keep them): the node then starts on a network that does not
	// change under it, which would make it drop its control connection.
	plain, err := d.nodeWait(ctx)
	if err != nil {
		return nil, err
	}
	domain, err := plain.DNSDomain(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the DNS configuration: %w", err)
	}
	v4, v6 := plain.Addrs()
	ifName := d.opts.VPNInterface
	dev, err := vpn.CreateTUN(ifName)
	if err != nil {
		return nil, err
	}
	st := &vpn.State{Up: true, Interface: ifName}
	if err := vpn.WriteState(d.vpnStateFile(), *st); err != nil {
		dev.Close()
		return nil, fmt.Errorf("record the VPN state: %w", err)
	}
	h, err := vpn.Configure(d.log, dev, st, d.vpnStateFile(), node.HostPrefixes(v4, v6), domain)
	if err != nil {
		dev.Close()
		return nil, errors.Join(err, vpn.Cleanup(d.log, d.vpnStateFile()))
	}
	if old, _ := d.swap(nil, nil, nil); old != nil {
		old.Close()
	}
	n, err := d.startNode(ctx, dev)
	if err != nil {
		h.Close()
		dev.Close()
		return nil, d.backToPlain(ctx, fmt.Errorf("start the node on %s: %w", ifName, err))
	}
	if nv4, nv6 := n.Addrs(); nv4 != v4 || nv6 != v6 {
		v4, v6 = nv4, nv6
		if err := h.SetAddrs(node.HostPrefixes(v4, v6)); err != nil {
			h.Close()
			n.Close()
			return nil, d.backToPlain(ctx, err)
		}
	}
	d.swap(n, h, st)
	d.log.Info("VPN mode up", "interface", ifName, "ipv4", v4, "ipv6", v6, "domain", domain, "dns", st.DNS)
	return d.vpnStatus(), nil
}

// backToPlain, after a failed switch, removes what the failed attempt
// left and restarts the node in plain mode. It returns cause, with the
// restart's failure if any.
func (d *Daemon) backToPlain(ctx context.Context, cause error) error {
	if err := vpn.Cleanup(d.log, d.vpnStateFile()); err != nil {
		cause = errors.Join(cause, err)
	}
	n, err := d.startNode(ctx, nil)
	if err != nil {
		return errors.Join(cause, fmt.Errorf("restart the node: %w", err))
	}
	d.swap(n, nil, nil)
	return cause
}

// vpnDown undoes VPN mode: DNS, routes and rules, then the device (with
// the node that owns it); the node restarts in plain mode.
func (d *Daemon) vpnDown(ctx context.Context) error {
	d.vpnMu.Lock()
	defer d.vpnMu.Unlock()
	if !d.vpnStatus().Up {
		// Nothing of ours is up; a crashed run may have left something.
		if err := vpn.Cleanup(d.log, d.vpnStateFile()); err != nil {
			return err
		}
		return nil
	}
	if err := d.closeVPN(); err != nil {
		return err
	}
	n, err := d.startNode(ctx, nil)
	if err != nil {
		return fmt.Errorf("VPN mode is down; restarting the node failed: %w", err)
	}
	d.swap(n, nil, nil)
	d.log.Info("VPN mode down")
	return nil
}

// closeVPN tears VPN mode down and removes its state file; the daemon
// is left with no node.
func (d *Daemon) closeVPN() error {
	old, h := d.swap(nil, nil, nil)
	var errs []error
	if h != nil {
		errs = append(errs, h.Close())
	}
	if old != nil {
		errs = append(errs, old.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("undo VPN mode: %w (the state file %s is kept for the next cleanup)", err, d.vpnStateFile())
	}
	if err := os.Remove(d.vpnStateFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func (d *Daemon) serveVPNUp(w http.ResponseWriter, r *http.Request) {
	st, err := d.vpnUp(r.Context())
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, vpn.ErrPermission) || errors.Is(err, vpn.ErrUnsupported) {
			code = http.StatusForbidden
		}
		writeError(w, code, CodeVPNFailed, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (d *Daemon) serveVPNDown(w http.ResponseWriter, r *http.Request) {
	if err := d.vpnDown(r.Context()); err != nil {
		writeError(w, http.StatusInternalServerError, CodeVPNFailed, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, d.vpnStatus())
}
