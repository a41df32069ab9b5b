//go:build linux

package vpn

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"tailscale.com/net/dns"
	"tailscale.com/util/dnsname"
)

// fakeOS is a DNS manager with a fixed capability and base config.
type fakeOS struct {
	split bool
	base  dns.OSConfig
}

func (f fakeOS) SetDNS(dns.OSConfig) error            { return nil }
func (f fakeOS) SupportsSplitDNS() bool               { return f.split }
func (f fakeOS) GetBaseConfig() (dns.OSConfig, error) { return f.base, nil }
func (f fakeOS) Close() error                         { return nil }

// TestOSConfig: split DNS sends only the domain to the node's resolver;
// without it the node's resolver comes first, the host's own servers
// (never the node's twice) after it, and the domain joins the search list.
func TestOSConfig(t *testing.T) {
	base := dns.OSConfig{
		Nameservers:   []netip.Addr{netip.MustParseAddr("10.0.0.53"), Resolver, netip.MustParseAddr("10.0.0.54")},
		SearchDomains: []dnsname.FQDN{"corp.example."},
	}
	cfg, mode, err := osConfig(fakeOS{split: true, base: base}, "devmesh.internal")
	want := dns.OSConfig{Nameservers: []netip.Addr{Resolver}, MatchDomains: []dnsname.FQDN{"devmesh.internal."}}
	if err != nil || mode != "split" || !cmp.Equal(cfg, want, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })) {
		t.Fatalf("split: %v %q %+v", err, mode, cfg)
	}
	cfg, mode, err = osConfig(fakeOS{base: base}, "devmesh.internal")
	want = dns.OSConfig{
		Nameservers:   []netip.Addr{Resolver, netip.MustParseAddr("10.0.0.53"), netip.MustParseAddr("10.0.0.54")},
		SearchDomains: []dnsname.FQDN{"devmesh.internal.", "corp.example."},
	}
	if err != nil || mode != "resolv.conf" || !cmp.Equal(cfg, want, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })) {
		t.Fatalf("resolv.conf: %v %q %+v", err, mode, cfg)
	}
	if _, _, err := osConfig(fakeOS{}, "devmesh..internal"); err == nil {
		t.Fatal("a bad domain was accepted")
	}
}
