package tunnel

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// maxDatagram is the largest UDP payload forwarded.
const maxDatagram = 64 << 10

// udpSession is the flow of one local client address: a connected UDP
// socket on the tailnet to the remote port.
type udpSession struct {
	conn       net.Conn
	lastActive atomic.Int64 // unix nanoseconds
}

func (s *udpSession) touch() { s.lastActive.Store(time.Now().UnixNano()) }

func (s *udpSession) idle() time.Duration {
	return time.Since(time.Unix(0, s.lastActive.Load()))
}

// serveUDP forwards datagrams from each local client address to remote
// over its own session, and the replies back to that address.
func (f *Forwarder) serveUDP(pc *net.UDPConn, remote string) error {
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
			conn, err := f.dial("udp", remote)
			if err != nil {
				f.log.Warn("port-forward: udp dial", "from", from, "to", remote, "err", err)
				continue
			}
			if !f.track(conn) {
				return nil
			}
			s = &udpSession{conn: conn}
			s.touch()
			mu.Lock()
			sessions[from] = s
			mu.Unlock()
			f.log.Debug("port-forward: udp session", "from", from, "to", remote)
			f.goTracked(func() {
				f.udpReplies(pc, from, s)
				mu.Lock()
				delete(sessions, from)
				mu.Unlock()
				f.untrack(s.conn)
				s.conn.Close()
			})
		}
		s.touch()
		if _, err := s.conn.Write(buf[:n]); err != nil {
			f.log.Debug("port-forward: udp write", "to", remote, "err", err)
		}
	}
}

// udpReplies copies datagrams from the session's remote socket to the
// client until the session has been idle for the idle timeout or fails.
func (f *Forwarder) udpReplies(pc *net.UDPConn, client netip.AddrPort, s *udpSession) {
	idle := f.opts.UDPIdleTimeout
	buf := make([]byte, maxDatagram)
	for {
		s.conn.SetReadDeadline(time.Now().Add(idle - s.idle()))
		n, err := s.conn.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && s.idle() < idle {
				continue // the client sent something meanwhile
			}
			return
		}
		s.touch()
		if _, err := pc.WriteToUDPAddrPort(buf[:n], client); err != nil {
			return
		}
	}
}
