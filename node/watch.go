package node

import (
	"context"
	"net/netip"
	"sort"
	"strings"
	"time"

	"tailscale.com/ipn"
	"tailscale.com/ipn/ipnstate"
)

// Peer is a peer in this node's netmap, as the daemon reports it.
type Peer struct {
	// HostName is the name the peer presented; DNSName its MagicDNS
	// name (with the trailing dot removed).
	HostName string       `json:"host_name"`
	DNSName  string       `json:"dns_name"`
	Addrs    []netip.Addr `json:"addrs"`
	Online   bool         `json:"online"`
	OS       string       `json:"os,omitempty"`
	// Relay is the DERP region code in use, CurAddr the direct ip:port
	// (empty when relayed or idle).
	Relay   string `json:"relay,omitempty"`
	CurAddr string `json:"cur_addr,omitempty"`
	// LastHandshake is the last WireGuard handshake (zero: none yet).
	LastHandshake time.Time `json:"last_handshake,omitzero"`
}

// Peers returns the peers in st, sorted by name.
func Peers(st *ipnstate.Status) []Peer {
	var out []Peer
	for _, p := range st.Peer {
		if len(p.TailscaleIPs) == 0 {
			continue
		}
		out = append(out, Peer{
			HostName: p.HostName,
			DNSName:  strings.TrimSuffix(p.DNSName, "."),
			Addrs:    append([]netip.Addr(nil), p.TailscaleIPs...),
			Online:   p.Online,
			OS:       p.OS,
			Relay:    p.Relay,
			CurAddr:  p.CurAddr,

			LastHandshake: p.LastHandshake,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DNSName < out[j].DNSName })
	return out
}

// FindPeer looks host (an address, a MagicDNS name, its first label or a
// host name) up among peers.
func FindPeer(peers []Peer, host string) (netip.Addr, bool) {
	ip, _ := netip.ParseAddr(host)
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	for _, p := range peers {
		for _, a := range p.Addrs {
			if ip.IsValid() && a == ip {
				return a, true
			}
		}
		if ip.IsValid() {
			continue
		}
		dns := strings.ToLower(p.DNSName)
		first, _, _ := strings.Cut(dns, ".")
		if name == dns || name == first || name == strings.ToLower(p.HostName) {
			return p.Addrs[0], true
		}
	}
	return netip.Addr{}, false
}

// WatchPeers calls fn with the node's status each time the backend
// reports a change of state or of the peer set (through tailscale's IPN
// bus, not by polling), starting with the current one, until ctx ends or
// the node closes. fn runs on WatchPeers' goroutine.
func (n *Node) WatchPeers(ctx context.Context, fn func(*ipnstate.Status)) error {
	w, err := n.lc.WatchIPNBus(ctx, ipn.NotifyInitialState|ipn.NotifyPeerChanges)
	if err != nil {
		return err
	}
	defer w.Close()
	first := true
	for {
		msg, err := w.Next()
		if err != nil {
			return err
		}
		if !first && msg.State == nil && msg.PeersChanged == nil && msg.PeersRemoved == nil && msg.SelfChange == nil {
			continue
		}
		first = false
		st, err := n.lc.Status(ctx)
		if err != nil {
			return err
		}
		fn(st)
	}
}

// DNSDomain returns the tailnet's DNS base domain from the netmap's DNS
// configuration (its first search domain); "" when the coordinator sends
// none.
func (n *Node) DNSDomain(ctx context.Context) (string, error) {
	w, err := n.lc.WatchIPNBus(ctx, ipn.NotifyInitialNetMap)
	if err != nil {
		return "", err
	}
	defer w.Close()
	for {
		msg, err := w.Next()
		if err != nil {
			return "", err
		}
		if msg.NetMap == nil {
			continue
		}
		if len(msg.NetMap.DNS.Domains) == 0 {
			return "", nil
		}
		return strings.TrimSuffix(msg.NetMap.DNS.Domains[0], "."), nil
	}
}
