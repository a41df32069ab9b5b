// Package vpn puts a daemon's tailnet node on the host's network: a TUN
// device (tailscale's pinned wireguard-go tun package), the node's
// addresses and routes for the tailnet's ranges only, and split DNS for
// the tailnet's domain pointed at the node's own resolver
// (100.100.100.100, answered by tsnet's netstack from the netmap).
//
// The host configuration is tailscale's own code: wgengine/router's Linux
// router (addresses, policy routing table 52 and its ip rules; netfilter
// left off) and net/dns's OS configurator (systemd-resolved over D-Bus
// when it manages /etc/resolv.conf, else resolvconf, else /etc/resolv.conf
// written directly with a backup). What was set up is recorded in a state
// file before it is done, so that Cleanup can undo it after a crash.
//
// VPN mode is Linux only; elsewhere every entry point returns
// ErrUnsupported.
package vpn

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"tailscale.com/atomicfile"
)

// DefaultInterface is the TUN device's name unless configured.
const DefaultInterface = "devmesh0"

// Resolver is the tailnet's DNS resolver address, answered by the node.
var Resolver = netip.MustParseAddr("100.100.100.100")

// Routes are the tailnet's address ranges: the only routes VPN mode adds
// (never a default route).
var Routes = []netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("fd7a:115c:a1e0::/48"),
}

// Errors.
var (
	// ErrUnsupported: VPN mode is not available on this OS.
	ErrUnsupported = errors.New("VPN mode is only supported on Linux")
	// ErrPermission: the process may not create a TUN device or change
	// routes.
	ErrPermission = errors.New("VPN mode needs root or CAP_NET_ADMIN")
)

// State is what VPN mode set up, kept in the state file from before the
// first change until everything is undone.
type State struct {
	// Up says VPN mode is wanted: a daemon that restarts brings it back.
	Up        bool   `json:"up"`
	Interface string `json:"interface"`
	// Clean says everything was undone (the daemon stopped with VPN mode
	// on): nothing to clean up, only Up to honour.
	Clean bool `json:"clean,omitempty"`
	// DNS is the DNS manager in use ("" before DNS was configured).
	DNS    string         `json:"dns,omitempty"`
	Domain string         `json:"domain,omitempty"`
	Addrs  []netip.Prefix `json:"addrs,omitempty"`
}

// ReadState reads the state file; ok is false when there is none.
func ReadState(path string) (st State, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return State{}, false, nil
	}
	if err != nil {
		return State{}, false, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return State{}, false, fmt.Errorf("read %s: %w", path, err)
	}
	return st, true, nil
}

// WriteState writes the state file atomically (mode 0600).
func WriteState(path string, st State) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o600)
}
