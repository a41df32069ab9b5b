package control

import (
	"math/rand/v2"
	"net/netip"
)

// allocAddresses proposes a random tailnet address pair: IPv4 from
// 100.64.0.0/10 (avoiding 100.100.100.0/24, used by Tailscale's service
// address, and 100.115.92.0/23, reserved by ChromeOS), and IPv6 in
// fd7a:115c:a1e0::/48 with the IPv4 bits in its low 32 bits.
func allocAddresses() (string, string) {
	for {
		n := rand.Uint32N(1 << 22) // host bits of a /10
		v4 := [4]byte{100, 64 | byte(n>>16), byte(n >> 8), byte(n)}
		a := netip.AddrFrom4(v4)
		if v4[3] == 0 || v4[3] == 255 ||
			netip.MustParsePrefix("100.100.100.0/24").Contains(a) ||
			netip.MustParsePrefix("100.115.92.0/23").Contains(a) {
			continue
		}
		v6 := [16]byte{0xfd, 0x7a, 0x11, 0x5c, 0xa1, 0xe0, 12: v4[0], 13: v4[1], 14: v4[2], 15: v4[3]}
		return a.String(), netip.AddrFrom16(v6).String()
	}
}
