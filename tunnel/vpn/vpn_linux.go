package vpn

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/tailscale/wireguard-go/tun"
	"tailscale.com/health"
	"tailscale.com/net/dns"
	"tailscale.com/net/netmon"
	"tailscale.com/types/logger"
	"tailscale.com/types/preftype"
	"tailscale.com/util/dnsname"
	"tailscale.com/util/eventbus"
	"tailscale.com/wgengine/router"
	_ "tailscale.com/wgengine/router/osrouter" // registers the Linux router
)

// mtu is the TUN device's MTU, tailscale's default.
const mtu = 1280

// capNetAdmin is CAP_NET_ADMIN's bit in the capability sets.
const capNetAdmin = 12

// Check reports whether this process may use VPN mode: it needs
// CAP_NET_ADMIN in its effective set (root has it) and /dev/net/tun.
func Check() error {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		hex, ok := strings.CutPrefix(line, "CapEff:")
		if !ok {
			continue
		}
		caps, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			return fmt.Errorf("read capabilities: %w", err)
		}
		if caps&(1<<capNetAdmin) == 0 {
			return fmt.Errorf("%w: the daemon runs as uid %d without it (run it as root, e.g. the system unit in examples/systemd, or grant it: setcap cap_net_admin+ep $(command -v devmesh))", ErrPermission, os.Getuid())
		}
		if _, err := os.Stat("/dev/net/tun"); err != nil {
			return fmt.Errorf("VPN mode needs the TUN driver: %w (modprobe tun; in a container, pass --device /dev/net/tun)", err)
		}
		return nil
	}
	return errors.New("read capabilities: no CapEff in /proc/self/status")
}

// CreateTUN creates the TUN device name. It fails if a device of that
// name is held by another process.
func CreateTUN(name string) (tun.Device, error) {
	dev, err := tun.CreateTUN(name, mtu)
	if errors.Is(err, syscall.EBUSY) {
		return nil, fmt.Errorf("create TUN device %s: it is in use by another process (another devmesh or tailscaled?)", name)
	}
	if err != nil {
		return nil, fmt.Errorf("create TUN device %s: %w", name, err)
	}
	return dev, nil
}

// Host is the host-side configuration of VPN mode: routes, addresses and
// DNS for the TUN device. Close undoes it.
type Host struct {
	log    *slog.Logger
	bus    *eventbus.Bus
	netMon *netmon.Monitor
	router router.Router // nil until created
	dns    dns.OSConfigurator
}

func logfOf(log *slog.Logger) logger.Logf {
	return func(format string, args ...any) { log.Debug(fmt.Sprintf(format, args...)) }
}

// Configure gives dev the node's addresses, routes for the tailnet's
// ranges and split DNS for domain through the node's resolver. st (with
// st.Interface set) is written to stateFile before each step, so that a
// crash at any point leaves enough for Cleanup. On error, what was done
// is undone.
func Configure(log *slog.Logger, dev tun.Device, st *State, stateFile string, addrs []netip.Prefix, domain string) (_ *Host, err error) {
	logf := logfOf(log)
	h := &Host{log: log, bus: eventbus.New()}
	defer func() {
		if err != nil {
			h.Close()
		}
	}()
	ht := health.NewTracker(h.bus)
	if h.netMon, err = netmon.New(h.bus, logf); err != nil {
		return nil, err
	}
	h.netMon.Start()
	st.Addrs = addrs
	if err := WriteState(stateFile, *st); err != nil {
		return nil, fmt.Errorf("record the VPN state: %w", err)
	}
	if h.router, err = router.New(logf, dev, h.netMon, ht, h.bus); err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	if err := h.router.Up(); err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	if err := h.router.Set(&router.Config{LocalAddrs: addrs, Routes: Routes, NetfilterMode: preftype.NetfilterOff}); err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	if domain == "" {
		log.Warn("the coordinator sent no DNS domain: VPN mode runs without MagicDNS")
		return h, nil
	}
	name, _ := dev.Name()
	if h.dns, err = dns.NewOSConfigurator(logf, ht, h.bus, nil, nil, name); err != nil {
		return nil, fmt.Errorf("no way to configure DNS on this host: %w", err)
	}
	ocfg, mode, err := osConfig(h.dns, domain)
	if err != nil {
		return nil, err
	}
	st.DNS, st.Domain = mode, domain
	if err := WriteState(stateFile, *st); err != nil {
		return nil, fmt.Errorf("record the VPN state: %w", err)
	}
	if err := h.dns.SetDNS(ocfg); err != nil {
		return nil, fmt.Errorf("configure DNS (%s): %w", mode, err)
	}
	log.Info("VPN DNS configured", "mode", mode, "domain", domain, "resolver", Resolver)
	return h, nil
}

// SetAddrs changes the device's addresses.
func (h *Host) SetAddrs(addrs []netip.Prefix) error {
	if err := h.router.Set(&router.Config{LocalAddrs: addrs, Routes: Routes, NetfilterMode: preftype.NetfilterOff}); err != nil {
		return fmt.Errorf("routes: %w", err)
	}
	return nil
}

// osConfig is the host resolver configuration for domain: split DNS
// where the manager supports it (systemd-resolved), else the node's
// resolver first and the host's own after it, which glibc asks when the
// node's resolver answers SERVFAIL (it has no upstream for other names).
func osConfig(c dns.OSConfigurator, domain string) (dns.OSConfig, string, error) {
	fqdn, err := dnsname.ToFQDN(domain)
	if err != nil {
		return dns.OSConfig{}, "", fmt.Errorf("DNS domain %q: %w", domain, err)
	}
	if c.SupportsSplitDNS() {
		return dns.OSConfig{Nameservers: []netip.Addr{Resolver}, MatchDomains: []dnsname.FQDN{fqdn}}, "split", nil
	}
	base, err := c.GetBaseConfig()
	if err != nil {
		return dns.OSConfig{}, "", fmt.Errorf("read the host's DNS configuration: %w", err)
	}
	cfg := dns.OSConfig{Nameservers: []netip.Addr{Resolver}, SearchDomains: append([]dnsname.FQDN{fqdn}, base.SearchDomains...)}
	for _, ns := range base.Nameservers {
		if ns != Resolver && !slices.Contains(cfg.Nameservers, ns) {
			cfg.Nameservers = append(cfg.Nameservers, ns)
		}
	}
	cfg.SearchDomains = slices.Compact(cfg.SearchDomains)
	return cfg, "resolv.conf", nil
}

// Close undoes the configuration: DNS first, then routes, rules and
// addresses (the device itself goes when its owner, the node, closes it).
// It is idempotent.
func (h *Host) Close() error {
	var errs []error
	if h.dns != nil {
		errs = append(errs, h.dns.Close())
		h.dns = nil
	}
	if h.router != nil {
		errs = append(errs, h.router.Close())
		h.router = nil
	}
	if h.netMon != nil {
		h.netMon.Close()
		h.netMon = nil
	}
	if h.bus != nil {
		h.bus.Close()
		h.bus = nil
	}
	return errors.Join(errs...)
}

// Cleanup undoes what a VPN mode that did not shut down (a crash, a
// SIGKILL) left behind, as its state file records: the ip rules (the
// device, its addresses and routes went with the process) and the DNS
// configuration; then it removes the state file. No state file: nothing
// to do.
func Cleanup(log *slog.Logger, stateFile string) error {
	st, ok, err := ReadState(stateFile)
	if err != nil || !ok {
		return err
	}
	if st.Clean {
		return os.Remove(stateFile)
	}
	log.Info("cleaning up after a VPN mode that did not shut down", "interface", st.Interface, "dns", st.DNS)
	logf := logfOf(log)
	// The router's own teardown removes its rules; it needs the device,
	// which a crashed process no longer holds.
	dev, err := CreateTUN(st.Interface)
	if err != nil {
		return err
	}
	bus := eventbus.New()
	defer bus.Close()
	ht := health.NewTracker(bus)
	nm, err := netmon.New(bus, logf)
	if err != nil {
		dev.Close()
		return err
	}
	defer nm.Close()
	var errs []error
	if r, err := router.New(logf, dev, nm, ht, bus); err != nil {
		errs = append(errs, err)
	} else {
		errs = append(errs, r.Up(), r.Close())
	}
	if st.DNS != "" {
		dns.CleanUp(logf, nm, bus, ht, st.Interface)
	}
	errs = append(errs, dev.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean up VPN leftovers: %w", err)
	}
	return os.Remove(stateFile)
}
