package control

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"tailscale.com/tailcfg"
)

func recordNames(cfg *tailcfg.DNSConfig) []string {
	var out []string
	for _, r := range cfg.ExtraRecords {
		out = append(out, r.Name+"="+r.Value)
	}
	return out
}

// TestDNSConfig: MagicDNS is on with the base domain routed to the node's
// resolver, and each node gets short names for its owner's agents only.
func TestDNSConfig(t *testing.T) {
	env := &mapEnv{domain: "dev.example", now: time.Now}
	for _, p := range []Policy{{}, {AdminsReachAll: true}} {
		ix := fixture(p)
		for _, tc := range []struct {
			viewer tailcfg.NodeID
			want   []string
		}{
			{1, []string{"n3.dev.example=100.64.0.3"}}, // alice's device: her agent
			{2, []string{"n3.dev.example=100.64.0.3"}},
			{3, nil}, // the agent itself
			{4, []string{"n5.dev.example=100.64.0.5"}}, // bob: his agent, not alice's
			{6, nil}, // carol (admin) may reach agents, but they are not hers
		} {
			cfg := ix.fullMap(ix.node(tc.viewer), env).DNSConfig
			if !cfg.Proxied || !cmp.Equal(cfg.Domains, []string{"dev.example"}) {
				t.Errorf("viewer %d: Proxied=%v Domains=%v", tc.viewer, cfg.Proxied, cfg.Domains)
			}
			if r, ok := cfg.Routes["dev.example."]; !ok || len(r) != 0 {
				t.Errorf("viewer %d: routes %v, want the domain routed to the node's resolver", tc.viewer, cfg.Routes)
			}
			if got := recordNames(cfg); !cmp.Equal(got, tc.want) {
				t.Errorf("admins-reach-all=%v viewer %d: records %v, want %v", p.AdminsReachAll, tc.viewer, got, tc.want)
			}
		}
		if got := ix.fullMap(ix.node(6), env).Peers; p.AdminsReachAll && len(got) != 2 {
			t.Errorf("carol with admins-reach-all sees %d peers, want both agents", len(got))
		}
	}
}

// TestDNSDeltas: a new, renamed or removed agent resends the DNS
// configuration to its owner's nodes (with the new records), and to no
// one else; endpoint patches and device changes never do.
func TestDNSDeltas(t *testing.T) {
	env := &mapEnv{domain: "devmesh.internal", now: time.Now}
	ix := fixture(Policy{AdminsReachAll: true})
	dnsTargets := func(ds deltas) []tailcfg.NodeID {
		var out []tailcfg.NodeID
		for id, d := range ds {
			if d.dns {
				out = append(out, id)
			}
		}
		slices.Sort(out)
		return out
	}
	// A new agent of alice's.
	ag := testNode(7, alice, 70)
	ds := ix.upsert(ag)
	if got := dnsTargets(ds); !cmp.Equal(got, []tailcfg.NodeID{1, 2}) {
		t.Fatalf("new agent: DNS resent to %v, want alice's devices [1 2]", got)
	}
	resp := ix.deltaMap(ix.node(1), ds[1], env)
	if resp.DNSConfig == nil || !slices.Contains(recordNames(resp.DNSConfig), "n7.devmesh.internal=100.64.0.7") {
		t.Fatalf("new agent: delta DNS %+v", resp.DNSConfig)
	}
	if resp := ix.deltaMap(ix.node(6), ds[6], env); resp == nil || resp.DNSConfig != nil {
		t.Fatalf("carol (admin) sees the agent but must get no DNS resend: %+v", resp)
	}
	// The same node unchanged in name and address: no resend.
	same := ag.clone()
	same.Online = true
	if got := dnsTargets(ix.upsert(same)); len(got) != 0 {
		t.Fatalf("unchanged agent: DNS resent to %v", got)
	}
	// A patch (endpoints) never touches DNS.
	if got := dnsTargets(ix.patch(7, patchEndpoints, func(n *Node) { n.Endpoints = []netip.AddrPort{netip.MustParseAddrPort("1.2.3.4:5")} })); len(got) != 0 {
		t.Fatalf("patch: DNS resent to %v", got)
	}
	// Renamed.
	renamed := ix.node(7).clone()
	renamed.GivenName = "web"
	if got := dnsTargets(ix.upsert(renamed)); !cmp.Equal(got, []tailcfg.NodeID{1, 2}) {
		t.Fatalf("renamed agent: DNS resent to %v", got)
	}
	// A new device of alice's: gets its full map; nobody's DNS changes.
	if got := dnsTargets(ix.upsert(testNode(8, alice, 0))); len(got) != 0 {
		t.Fatalf("new device: DNS resent to %v", got)
	}
	// Removed: alice's nodes get the records without it.
	ds = ix.remove(7)
	if got := dnsTargets(ds); !cmp.Equal(got, []tailcfg.NodeID{1, 2, 8}) {
		t.Fatalf("removed agent: DNS resent to %v", got)
	}
	resp = ix.deltaMap(ix.node(1), ds[1], env)
	if got := recordNames(resp.DNSConfig); !cmp.Equal(got, []string{"n3.devmesh.internal=100.64.0.3"}) {
		t.Fatalf("after removal records %v", got)
	}
}

func TestValidateDomain(t *testing.T) {
	for d, ok := range map[string]bool{
		"devmesh.internal": true, "corp.example.com": true, "a-b.internal": true,
		"": false, "internal": false, "Dev.internal": false, "devmesh.internal.": false,
		"dev mesh.internal": false, "-x.internal": false, "a..internal": false,
	} {
		if err := ValidateDomain(d); (err == nil) != ok {
			t.Errorf("ValidateDomain(%q) = %v, want ok=%v", d, err, ok)
		}
	}
}
