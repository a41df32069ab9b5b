package node

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"tailscale.com/net/netcheck"
	"tailscale.com/net/netmon"
	"tailscale.com/tailcfg"
	"tailscale.com/util/eventbus"
)

// NetReport describes the local network as seen from the coordinator's
// relays and STUN servers: what decides whether peers can reach each
// other directly.
type NetReport struct {
	// UDP is true when a STUN round trip completed: outbound UDP works.
	UDP  bool `json:"udp"`
	IPv4 bool `json:"ipv4"`
	IPv6 bool `json:"ipv6"`
	// Endpoints are this host's public UDP ip:port as STUN servers saw
	// them, best first.
	Endpoints []netip.AddrPort `json:"endpoints"`
	// MappingVariesByDestIP is true for an endpoint-dependent ("hard")
	// NAT, which gives each destination its own public port; nil when it
	// could not be told, which needs two or more IPv4 STUN servers
	// (addresses or ports), or when UDP does not get out.
	MappingVariesByDestIP *bool `json:"mapping_varies_by_dest_ip"`
	// STUNServers is how many distinct IPv4 STUN ip:ports the DERP map
	// offers.
	STUNServers int `json:"stun_servers"`
	// PreferredRegion is the nearest relay region's ID (0: none answered).
	PreferredRegion int `json:"preferred_region"`
	// Regions lists every relay region, nearest first; Latency is zero
	// for a region that did not answer.
	Regions []RegionLatency `json:"regions"`
	// CaptivePortal is true when HTTP looked intercepted.
	CaptivePortal bool `json:"captive_portal,omitempty"`
}

// RegionLatency is the measured round trip to one relay region.
type RegionLatency struct {
	ID      int           `json:"id"`
	Code    string        `json:"code"`
	Name    string        `json:"name"`
	Latency time.Duration `json:"latency_ns"`
}

// DERPMap returns the relay map the coordinator sent this node.
func (n *Node) DERPMap(ctx context.Context) (*tailcfg.DERPMap, error) {
	return n.lc.CurrentDERPMap(ctx)
}

// Netcheck probes the network from this host against the relays and STUN
// servers in dm (see DERPMap). It binds its own UDP sockets, so it
// measures the host, not a node; it takes up to about five seconds.
func Netcheck(ctx context.Context, dm *tailcfg.DERPMap, log *slog.Logger) (*NetReport, error) {
	if dm == nil || len(dm.Regions) == 0 {
		return nil, fmt.Errorf("netcheck: the DERP map has no regions")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	logf := func(format string, args ...any) { log.Debug(fmt.Sprintf(format, args...)) }
	bus := eventbus.New()
	defer bus.Close()
	mon, err := netmon.New(bus, logf)
	if err != nil {
		return nil, fmt.Errorf("netcheck: %w", err)
	}
	defer mon.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // closes the sockets Standalone opened
	c := &netcheck.Client{NetMon: mon, Logf: logf}
	if err := c.Standalone(ctx, ":0"); err != nil {
		log.Debug("netcheck: no UDP socket", "err", err)
	}
	r, err := c.GetReport(ctx, dm, nil)
	if err != nil {
		return nil, fmt.Errorf("netcheck: %w", err)
	}
	return netReport(dm, r), nil
}

// netReport converts tailscale's report into ours.
func netReport(dm *tailcfg.DERPMap, r *netcheck.Report) *NetReport {
	out := &NetReport{
		UDP:             r.UDP,
		IPv4:            r.IPv4,
		IPv6:            r.IPv6,
		PreferredRegion: r.PreferredDERP,
		CaptivePortal:   r.CaptivePortal.EqualBool(true),
		STUNServers:     countSTUNv4(dm),
	}
	v4, v6 := r.GetGlobalAddrs()
	out.Endpoints = append(v4, v6...)
	if v, ok := r.MappingVariesByDestIP.Get(); ok && out.STUNServers > 1 {
		out.MappingVariesByDestIP = &v
	}
	for id, reg := range dm.Regions {
		if !hasRelay(reg) {
			continue // a STUN-only region: no relay to list
		}
		out.Regions = append(out.Regions, RegionLatency{ID: id, Code: reg.RegionCode, Name: reg.RegionName, Latency: r.RegionLatency[id]})
	}
	slices.SortFunc(out.Regions, func(a, b RegionLatency) int {
		switch {
		case (a.Latency == 0) != (b.Latency == 0):
			if a.Latency == 0 {
				return 1
			}
			return -1
		case a.Latency != b.Latency:
			return cmp.Compare(a.Latency, b.Latency)
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out
}

// hasRelay reports whether reg has a DERP node besides STUN-only ones.
func hasRelay(reg *tailcfg.DERPRegion) bool {
	for _, n := range reg.Nodes {
		if !n.STUNOnly {
			return true
		}
	}
	return false
}

// countSTUNv4 counts the distinct IPv4 STUN server addresses and ports in
// dm (by host name when a node has no literal address).
func countSTUNv4(dm *tailcfg.DERPMap) int {
	seen := map[string]bool{}
	for _, reg := range dm.Regions {
		for _, n := range reg.Nodes {
			if n.STUNPort < 0 || n.IPv4 == "none" {
				continue
			}
			addr := n.IPv4
			if addr == "" {
				addr = n.HostName
			}
			port := n.STUNPort
			if port == 0 {
				port = 3478 // the DERP map's default
			}
			seen[fmt.Sprintf("%s:%d", addr, port)] = true
		}
	}
	return len(seen)
}
