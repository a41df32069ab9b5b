package tunnel

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// PortInUseError is a local port that something else listens on, with a
// free one to suggest instead.
type PortInUseError struct {
	Spec ForwardSpec
	Free uint16 // a free local port, 0 if none was found
	Err  error
}

func (e *PortInUseError) Error() string {
	msg := fmt.Sprintf("local %s port %s is already in use (another program, or a forward of the workspace's own port on this host)",
		e.Spec.Network, e.Spec.Listen)
	if e.Free == 0 {
		return msg + fmt.Sprintf("; pick another LOCAL, or 0 for any free port: --%s %s", e.Spec.Network, e.spec(0))
	}
	return msg + fmt.Sprintf("; port %d is free: --%s %s (or 0 for any free port)", e.Free, e.Spec.Network, e.spec(e.Free))
}

func (e *PortInUseError) Unwrap() error { return e.Err }

// spec renders the forward with local port p, as the user would type it.
func (e *PortInUseError) spec(p uint16) string {
	s := fmt.Sprintf("%d:%d", p, e.Spec.RemotePort)
	if a := e.Spec.Listen.Addr(); a != netip.AddrFrom4([4]byte{127, 0, 0, 1}) {
		if a.Is6() {
			return fmt.Sprintf("[%s]:%s", a, s)
		}
		return a.String() + ":" + s
	}
	return s
}

// freePort finds a free local port near s's (the next 100 above it),
// else any the system picks; 0 if none.
func freePort(s ForwardSpec) uint16 {
	try := func(p uint16) bool {
		a := netip.AddrPortFrom(s.Listen.Addr(), p).String()
		if s.Network == "udp" {
			pc, err := net.ListenPacket("udp", a)
			if err == nil {
				pc.Close()
			}
			return err == nil
		}
		ln, err := net.Listen("tcp", a)
		if err == nil {
			ln.Close()
		}
		return err == nil
	}
	for p := uint32(s.Listen.Port()) + 1; p < uint32(s.Listen.Port())+100 && p <= 65535; p++ {
		if try(uint16(p)) {
			return uint16(p)
		}
	}
	network := s.Network
	if network == "tcp" {
		ln, err := net.Listen(network, netip.AddrPortFrom(s.Listen.Addr(), 0).String())
		if err != nil {
			return 0
		}
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).AddrPort().Port()
	}
	return 0
}

// reportDialError tells the user, on ForwardOptions.Errors, that a
// connection could not be forwarded, and why in their terms.
func (f *Forwarder) reportDialError(from net.Addr, remote string, err error) {
	w := f.opts.Errors
	if w == nil || f.isClosed() {
		return
	}
	_, port, _ := net.SplitHostPort(remote)
	why := err.Error()
	if strings.Contains(why, "refused") {
		why = fmt.Sprintf("nothing listens on port %s in the workspace (connection refused)", port)
	}
	f.errMu.Lock()
	defer f.errMu.Unlock()
	fmt.Fprintf(w, "port-forward: connection from %s to workspace port %s failed: %s\n", from, port, why)
}
