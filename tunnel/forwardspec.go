package tunnel

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ForwardSpec is one port forward: connections (or datagrams) to Listen
// on this machine go to RemotePort on the agent's tailnet address.
type ForwardSpec struct {
	Network    string // "tcp" or "udp"
	Listen     netip.AddrPort
	RemotePort uint16
}

func (s ForwardSpec) String() string {
	return fmt.Sprintf("%s %s -> %d", s.Network, s.Listen, s.RemotePort)
}

// ParseForwardSpec parses "L:R" (listen on 127.0.0.1:L) or "ADDR:L:R"
// (ADDR an IP address, IPv6 in brackets, or "localhost") for network
// "tcp" or "udp". L may be 0 (any free port); R may not.
func ParseForwardSpec(network, spec string) (ForwardSpec, error) {
	if network != "tcp" && network != "udp" {
		return ForwardSpec{}, fmt.Errorf("forward %q: unknown network %q", spec, network)
	}
	bad := func(why string) (ForwardSpec, error) {
		return ForwardSpec{}, fmt.Errorf("invalid --%s %q: %s (want LOCAL:REMOTE or ADDR:LOCAL:REMOTE, e.g. 8080:80 or 0.0.0.0:8080:80)", network, spec, why)
	}
	i := strings.LastIndexByte(spec, ':')
	if i < 0 {
		return bad("no remote port")
	}
	rest, remoteStr := spec[:i], spec[i+1:]
	host, localStr := "127.0.0.1", rest
	if j := strings.LastIndexByte(rest, ':'); j >= 0 {
		host, localStr = rest[:j], rest[j+1:]
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return bad(fmt.Sprintf("%q is not an IP address", host))
	}
	local, err := parsePort(localStr, true)
	if err != nil {
		return bad("local port: " + err.Error())
	}
	remote, err := parsePort(remoteStr, false)
	if err != nil {
		return bad("remote port: " + err.Error())
	}
	return ForwardSpec{Network: network, Listen: netip.AddrPortFrom(ip.Unmap(), local), RemotePort: remote}, nil
}

func parsePort(s string, zeroOK bool) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("%q is not a port number", s)
	}
	if n == 0 && !zeroOK {
		return 0, fmt.Errorf("port 0")
	}
	return uint16(n), nil
}

// CheckForwardSpecs rejects two forwards of one network on the same local
// address.
func CheckForwardSpecs(specs []ForwardSpec) error {
	seen := map[string]bool{}
	for _, s := range specs {
		if s.Listen.Port() == 0 {
			continue
		}
		k := s.Network + " " + net.JoinHostPort(s.Listen.Addr().String(), strconv.Itoa(int(s.Listen.Port())))
		if seen[k] {
			return fmt.Errorf("two forwards listen on %s %s", s.Network, s.Listen)
		}
		seen[k] = true
	}
	return nil
}
