//go:build !linux

package vpn

import (
	"log/slog"
	"net/netip"

	"github.com/tailscale/wireguard-go/tun"
)

// Check reports whether this process may use VPN mode.
func Check() error { return ErrUnsupported }

// CreateTUN is not supported on this OS.
func CreateTUN(name string) (tun.Device, error) { return nil, ErrUnsupported }

// Host is the host-side configuration (unsupported here).
type Host struct{}

// Configure is not supported on this OS.
func Configure(log *slog.Logger, dev tun.Device, st *State, stateFile string, addrs []netip.Prefix, domain string) (*Host, error) {
	return nil, ErrUnsupported
}

// SetAddrs is not supported on this OS.
func (h *Host) SetAddrs(addrs []netip.Prefix) error { return ErrUnsupported }

// Close does nothing.
func (h *Host) Close() error { return nil }

// Cleanup is not supported on this OS.
func Cleanup(log *slog.Logger, stateFile string) error { return ErrUnsupported }
