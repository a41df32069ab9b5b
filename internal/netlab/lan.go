//go:build linux

package netlab

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// NAT is how a router maps its LAN's connections to its public address.
type NAT int

const (
	// EasyNAT maps each LAN source ip:port to one public port for every
	// destination (endpoint-independent mapping): SNAT to the router's
	// address keeping the source port, which Linux does whenever the
	// port is free. Its firewall admits only replies from the exact
	// ip:port a host sent to (address- and port-dependent filtering, a
	// "port-restricted cone"), as conntrack does.
	EasyNAT NAT = iota
	// FullConeNAT is EasyNAT whose mapped ports take packets from any
	// sender (endpoint-independent filtering), as a home router with
	// UPnP or its host in the DMZ: inbound UDP goes to the LAN's first
	// host.
	FullConeNAT
	// HardNAT gives each destination its own random public port
	// (endpoint-dependent mapping): MASQUERADE --random-fully.
	HardNAT
	// NoUDP is EasyNAT with every forwarded UDP packet dropped: only TCP
	// gets out.
	NoUDP
	// MasqueradeNAT is an easy NAT made the way most Linux routers make
	// it, plain MASQUERADE: Linux keeps the source port when it is free,
	// so the mapping is endpoint-independent in practice.
	MasqueradeNAT
)

func (n NAT) String() string {
	switch n {
	case EasyNAT:
		return "easy"
	case FullConeNAT:
		return "full cone"
	case HardNAT:
		return "hard"
	case NoUDP:
		return "no UDP"
	case MasqueradeNAT:
		return "easy (MASQUERADE)"
	}
	return fmt.Sprintf("NAT(%d)", int(n))
}

// LAN is a private network (192.168.N.0/24) behind a router namespace
// whose public side is on the internet segment. The router also runs a
// home-router firewall: it drops unsolicited inbound packets in the
// filter table, before conntrack confirms them. Without that, a peer's
// early packet to the router's public port creates a conntrack entry that
// makes the NAT pick another port for the host's own outbound packet, and
// UDP simultaneous open breaks on any Linux NAT.
type LAN struct {
	lab    *Lab
	Router *Host // LAN side at 192.168.N.1; Router.Addr is its public address
	n      int
	hosts  int
	nat    NAT
}

// LAN adds a private network behind a router that NATs as nat.
func (l *Lab) LAN(role string, nat NAT) *LAN {
	r := l.PublicHost(role + "-r")
	l.mu.Lock()
	l.nlan++
	n := l.nlan
	l.mu.Unlock()
	lan := &LAN{lab: l, Router: r, n: n}
	l.ns(r.NS, "link", "add", "br0", "type", "bridge")
	l.ns(r.NS, "addr", "add", fmt.Sprintf("192.168.%d.1/24", n), "dev", "br0")
	l.ns(r.NS, "link", "set", "br0", "up")
	r.Exec("sysctl", "-qw", "net.ipv4.ip_forward=1")
	// nl-nat holds the rules of the NAT kind, nl-block those of
	// BlockUDP; both are consulted before the firewall.
	r.Exec("iptables", "-N", "nl-nat")
	r.Exec("iptables", "-N", "nl-block")
	r.Exec("iptables", "-A", "FORWARD", "-j", "nl-block")
	r.Exec("iptables", "-A", "FORWARD", "-j", "nl-nat")
	r.Exec("iptables", "-A", "INPUT", "-i", "eth0", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
	r.Exec("iptables", "-A", "INPUT", "-i", "eth0", "-j", "DROP")
	r.Exec("iptables", "-A", "FORWARD", "-i", "eth0", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
	r.Exec("iptables", "-A", "FORWARD", "-i", "eth0", "-j", "DROP")
	lan.SetNAT(nat)
	return lan
}

// Host adds a host to the LAN, its default route through the router.
func (lan *LAN) Host(role string) *Host {
	l := lan.lab
	l.mu.Lock()
	lan.hosts++
	i := lan.hosts
	l.mu.Unlock()
	h := &Host{lab: l, NS: l.newNS(role), Addr: lan.hostAddr(i)}
	l.plug(lan.Router.NS, "br0", fmt.Sprintf("h%d", i), h.NS, h.Addr, 24)
	l.ns(h.NS, "route", "add", "default", "via", fmt.Sprintf("192.168.%d.1", lan.n))
	return h
}

// NAT returns the router's current NAT kind.
func (lan *LAN) NAT() NAT { return lan.nat }

// SetNAT replaces the router's NAT (and UDP block) rules with those of
// nat. Existing conntrack entries stay, as on a real router that is
// reconfigured; FlushConntrack drops them.
func (lan *LAN) SetNAT(nat NAT) {
	r := lan.Router
	r.Exec("iptables", "-t", "nat", "-F", "POSTROUTING")
	r.Exec("iptables", "-t", "nat", "-F", "PREROUTING")
	r.Exec("iptables", "-F", "nl-nat")
	switch nat {
	case EasyNAT, FullConeNAT, NoUDP:
		// A range that holds every source port keeps the source port
		// unless another LAN host already maps to it.
		for _, proto := range []string{"udp", "tcp"} {
			r.Exec("iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "eth0", "-p", proto, "-j", "SNAT", "--to-source", r.Addr.String()+":1024-65535")
		}
		r.Exec("iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "eth0", "-j", "SNAT", "--to-source", r.Addr.String())
	case HardNAT:
		r.Exec("iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "eth0", "-j", "MASQUERADE", "--random-fully")
	case MasqueradeNAT:
		r.Exec("iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "eth0", "-j", "MASQUERADE")
	}
	switch nat {
	case FullConeNAT:
		// Inbound UDP to any unprivileged port goes to the LAN's first
		// host, whose source ports the SNAT above keeps: a mapped
		// port takes packets from any sender.
		r.Exec("iptables", "-t", "nat", "-A", "PREROUTING", "-i", "eth0", "-p", "udp", "--dport", "1024:65535", "-j", "DNAT", "--to-destination", lan.hostAddr(1).String())
		r.Exec("iptables", "-A", "nl-nat", "-i", "eth0", "-m", "conntrack", "--ctstate", "DNAT", "-j", "ACCEPT")
	case NoUDP:
		r.Exec("iptables", "-A", "nl-nat", "-i", "br0", "-p", "udp", "-j", "DROP")
	}
	lan.nat = nat
}

// hostAddr is the address of the LAN's i-th host (1-based).
func (lan *LAN) hostAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{192, 168, byte(lan.n), byte(i + 1)})
}

// BlockUDP drops (or, with block false, lets through again) every UDP
// packet the router forwards, in both directions, keeping the NAT.
func (lan *LAN) BlockUDP(block bool) {
	lan.Router.Exec("iptables", "-F", "nl-block")
	if block {
		lan.Router.Exec("iptables", "-A", "nl-block", "-p", "udp", "-j", "DROP")
	}
}

// BlockUDPOut drops (or, with block false, lets through again) UDP from
// the LAN to the internet only: replies to the LAN still arrive, but
// nothing the LAN's hosts send gets out, a one-way black hole.
func (lan *LAN) BlockUDPOut(block bool) {
	lan.Router.Exec("iptables", "-F", "nl-block")
	if block {
		lan.Router.Exec("iptables", "-A", "nl-block", "-i", "br0", "-p", "udp", "-j", "DROP")
	}
}

// Cut drops (or, with cut false, lets through again) everything the
// router forwards, both ways, as when the LAN's uplink is unplugged: its
// hosts reach neither the internet nor the coordinator, and their
// addresses and sockets stay. It returns an error instead of failing the
// test, so that any goroutine may call it.
func (lan *LAN) Cut(cut bool) error {
	if out, err := lan.Router.Try("iptables", "-F", "nl-block"); err != nil {
		return fmt.Errorf("%s: iptables -F nl-block: %v: %s", lan.Router.NS, err, out)
	}
	if !cut {
		return nil
	}
	if out, err := lan.Router.Try("iptables", "-A", "nl-block", "-j", "DROP"); err != nil {
		return fmt.Errorf("%s: iptables -A nl-block: %v: %s", lan.Router.NS, err, out)
	}
	return nil
}

// Renumber gives the router a new public address, as when an ISP hands
// out a new lease: the NAT maps to the new address and every conntrack
// entry is forgotten, so the LAN's hosts get new public endpoints (NAT
// rebinding) without noticing anything themselves.
func (lan *LAN) Renumber() {
	l := lan.lab
	l.mu.Lock()
	l.nhost++
	n := l.nhost
	l.mu.Unlock()
	old := lan.Router.Addr
	lan.Router.Addr = netip.AddrFrom4([4]byte{198, 18, 0, byte(n + 1)})
	// Without promote_secondaries, deleting the old (primary) address
	// would delete the new one too.
	lan.Router.Exec("sysctl", "-qw", "net.ipv4.conf.eth0.promote_secondaries=1")
	l.ns(lan.Router.NS, "addr", "add", lan.Router.Addr.String()+"/24", "dev", "eth0")
	lan.SetNAT(lan.nat)
	l.ns(lan.Router.NS, "addr", "del", old.String()+"/24", "dev", "eth0")
	lan.FlushConntrack()
}

// FlushConntrack forgets every connection the router tracks, so the next
// packets get fresh NAT mappings.
func (lan *LAN) FlushConntrack() {
	lan.Router.Exec("conntrack", "-F")
}

// Conntrack lists the router's UDP conntrack entries (for logs).
func (lan *LAN) Conntrack() string {
	out, _ := exec.Command("ip", "netns", "exec", lan.Router.NS, "conntrack", "-L", "-p", "udp").CombinedOutput()
	return strings.TrimSpace(string(out))
}
