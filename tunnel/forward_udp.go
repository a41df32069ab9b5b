package tunnel

import (
	"bufio"
	"net"
	"net/netip"
	"sync"

	"github.com/devmesh/devmesh/agent/udprelay"
)

// maxDatagram is the largest UDP payload forwarded.
const maxDatagram = udprelay.MaxDatagram

// udpSession is the flow of one local client address: a stream to the
// agent's UDP relay (see package udprelay), which sends the datagrams
// from a socket of its own to the remote port on the workspace's
// loopback.
type udpSession struct {
	conn net.Conn
	idle *udprelay.IdleTimer // closes conn when the flow is quiet
}

// serveUDP forwards datagrams from each local client address over a
// relay stream of its own to relay (the agent's ip:UDPRelayPort), for
// port on the workspace's loopback, and the replies back to that address.
func (f *Forwarder) serveUDP(pc *net.UDPConn, relay string, port uint16) error {
	var mu sync.Mutex // guards sessions
	sessions := map[netip.AddrPort]*udpSession{}
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if f.isClosed() {
				return nil
			}
			return err
		}
		mu.Lock()
		s := sessions[from]
		mu.Unlock()
		if s == nil {
			if s = f.openUDPSession(relay, port, from); s == nil {
				if f.isClosed() {
					return nil
				}
				continue
			}
			mu.Lock()
			sessions[from] = s
			mu.Unlock()
			f.goTracked(func() {
				f.udpReplies(pc, from, s)
				mu.Lock()
				delete(sessions, from)
				mu.Unlock()
				s.idle.Stop()
				f.untrack(s.conn)
				s.conn.Close()
			})
		}
		s.idle.Touch()
		if err := udprelay.WriteFrame(s.conn, buf[:n]); err != nil {
			f.log.Debug("port-forward: udp write", "to", relay, "port", port, "err", err)
		}
	}
}

// openUDPSession opens a relay stream for client; nil if that failed
// (logged) or f is closed.
func (f *Forwarder) openUDPSession(relay string, port uint16, client netip.AddrPort) *udpSession {
	conn, err := f.dial("tcp", relay)
	if err != nil {
		f.log.Warn("port-forward: udp: cannot reach the agent's relay", "from", client, "relay", relay, "err", err)
		return nil
	}
	if !f.track(conn) {
		return nil
	}
	if err := udprelay.WriteHeader(conn, port); err != nil {
		f.log.Warn("port-forward: udp: relay", "from", client, "relay", relay, "err", err)
		f.untrack(conn)
		conn.Close()
		return nil
	}
	f.log.Debug("port-forward: udp session", "from", client, "relay", relay, "port", port)
	return &udpSession{conn: conn, idle: udprelay.NewIdleTimer(f.opts.UDPIdleTimeout, func() { conn.Close() })}
}

// udpReplies copies datagrams from the relay stream to the client until
// the stream ends: the agent closed it, or the idle timer did.
func (f *Forwarder) udpReplies(pc *net.UDPConn, client netip.AddrPort, s *udpSession) {
	r := bufio.NewReader(s.conn)
	buf := make([]byte, maxDatagram)
	for {
		n, err := udprelay.ReadFrame(r, buf)
		if err != nil {
			return
		}
		s.idle.Touch()
		if _, err := pc.WriteToUDPAddrPort(buf[:n], client); err != nil {
			return
		}
	}
}
