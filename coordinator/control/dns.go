package control

import (
	"fmt"
	"slices"
	"strings"

	"tailscale.com/tailcfg"
	"tailscale.com/types/dnstype"
	"tailscale.com/util/dnsname"
)

// DefaultDomain is the MagicDNS base domain unless configured.
const DefaultDomain = "devmesh.internal"

// ValidateDomain checks a MagicDNS base domain: lower-case DNS labels
// (at least two, so that it never shadows a top-level domain), no
// trailing dot.
func ValidateDomain(d string) error {
	if d == "" || d != strings.ToLower(d) || strings.HasSuffix(d, ".") || !strings.Contains(d, ".") {
		return fmt.Errorf("%q: want a lower-case domain of two or more labels without a trailing dot, such as %s", d, DefaultDomain)
	}
	if _, err := dnsname.ToFQDN(d); err != nil {
		return fmt.Errorf("%q: %w", d, err)
	}
	for _, l := range strings.Split(d, ".") {
		if err := dnsname.ValidLabel(l); err != nil {
			return fmt.Errorf("%q: %w", d, err)
		}
	}
	return nil
}

// MagicDNSResolver is the tailnet's resolver address, answered by every
// node itself (tailscale's "quad-100").
const MagicDNSResolver = "100.100.100.100"

// dnsConfig is the DNS configuration viewer receives. MagicDNS is on
// (Proxied) and the whole base domain is routed to the node's own
// resolver, so that besides the peers' full names
// (<name>.<owner>.<domain>, answered from the netmap) the short names of
// the viewer's own workspaces resolve: <workspace>.<domain>, carried as
// ExtraRecords. The domain is also the search domain, so "ws" alone
// resolves to the viewer's workspace.
//
// The records depend on which of the owner's agents viewer sees, their
// names and addresses: upsert and remove flag a DNS resend (delta.dns)
// exactly when one of those changes (namesOwnAgent).
func (ix *index) dnsConfig(viewer *Node, env *mapEnv) *tailcfg.DNSConfig {
	cfg := &tailcfg.DNSConfig{
		Proxied: true,
		Domains: []string{env.domain},
		Routes:  map[string][]*dnstype.Resolver{env.domain + ".": nil},
	}
	for _, p := range ix.peers(viewer) {
		if !ix.namesOwnAgent(viewer.ID, p) {
			continue
		}
		name := strings.ToLower(p.GivenName + "." + env.domain)
		for _, a := range p.Addresses {
			typ := "A"
			if a.Addr().Is6() {
				typ = "AAAA"
			}
			cfg.ExtraRecords = append(cfg.ExtraRecords, tailcfg.DNSRecord{Name: name, Type: typ, Value: a.Addr().String()})
		}
	}
	slices.SortFunc(cfg.ExtraRecords, func(a, b tailcfg.DNSRecord) int {
		return strings.Compare(a.Name+" "+a.Value, b.Name+" "+b.Value)
	})
	return cfg
}

// namesOwnAgent reports whether n is a workspace agent of the owner of
// node viewerID, i.e. whether n has a short name in that node's DNS
// configuration.
func (ix *index) namesOwnAgent(viewerID tailcfg.NodeID, n *Node) bool {
	v := ix.nodes[viewerID]
	return v != nil && n != nil && n.IsAgent() && v.ID != n.ID && v.Owner == n.Owner
}
