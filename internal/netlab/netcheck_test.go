//go:build linux

package netlab_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/devmesh/devmesh/internal/netlab"
)

// TestNetcheckNATKinds runs `devmesh netcheck` behind each kind of router:
// the coordinator's two STUN ports tell a hard NAT from an easy one, and
// a network without UDP says so.
func TestNetcheckNATKinds(t *testing.T) {
	netlab.Skip(t)
	t.Parallel()
	l := netlab.New(t)
	coord := netlab.StartCoordinator(t, l.PublicHost("coord"), netlab.CoordinatorOptions{})
	for i, tc := range []struct {
		nat      netlab.NAT
		udp      bool
		varies   *bool // nil: cannot tell
		text     string
		hintText string
	}{
		{netlab.EasyNAT, true, ptr(false), "easy: one public port", "Direct paths work with peers behind easy NATs"},
		{netlab.FullConeNAT, true, ptr(false), "easy: one public port", "Direct paths work with peers behind easy NATs"},
		{netlab.HardNAT, true, ptr(true), "hard: the public port varies", "Direct paths need a peer that accepts UDP from any port"},
		{netlab.NoUDP, false, nil, "unknown (no UDP)", "Without UDP, every connection is relayed"},
	} {
		lan := l.LAN("lan"+string(rune('a'+i)), tc.nat)
		cli := netlab.NewCLI(t, lan.Host("client"+string(rune('a'+i))))
		cli.Login(coord.URL, "admin", "correct horse battery staple")
		out := cli.Must("netcheck", "-o", "json")
		var r struct {
			UDP     bool  `json:"udp"`
			Varies  *bool `json:"mapping_varies_by_dest_ip"`
			Servers int   `json:"stun_servers"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%s: netcheck -o json: %v\n%s", tc.nat, err, out)
		}
		if r.UDP != tc.udp || (r.Varies == nil) != (tc.varies == nil) || (r.Varies != nil && *r.Varies != *tc.varies) || r.Servers != 2 {
			t.Errorf("%s NAT: udp %v, mapping varies %v, %d STUN servers; want udp %v, varies %v, 2 servers", tc.nat, r.UDP, deref(r.Varies), r.Servers, tc.udp, deref(tc.varies))
		}
		text := cli.Must("netcheck")
		if !strings.Contains(text, tc.text) || !strings.Contains(text, "Hint: "+tc.hintText) {
			t.Errorf("%s NAT: netcheck says\n%s\nwant %q and hint %q", tc.nat, text, tc.text, tc.hintText)
		}
		t.Logf("%s NAT:\n%s", tc.nat, text)
	}
}

func ptr(b bool) *bool { return &b }

func deref(b *bool) string {
	if b == nil {
		return "unknown"
	}
	if *b {
		return "true"
	}
	return "false"
}
