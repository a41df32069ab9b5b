package coordinator

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// splitListener serves plain HTTP and TLS on one port: it peeks at each
// connection's first byte (0x16 starts a TLS handshake) and hands the
// connection to the matching child listener.
type splitListener struct {
	ln      net.Listener
	log     *slog.Logger
	plain   *chanListener
	tls     *chanListener
	once    sync.Once
	closing atomic.Bool // set by Close: the accept error that follows is expected

	// routing holds the connections waiting for their first byte (a
	// client's spare keep-alive connection may send none for long);
	// Close closes them.
	mu      sync.Mutex // guards routing
	routing map[net.Conn]struct{}
}

func newSplitListener(ln net.Listener, log *slog.Logger) *splitListener {
	return &splitListener{ln: ln, log: log, plain: newChanListener(ln.Addr()), tls: newChanListener(ln.Addr()),
		routing: map[net.Conn]struct{}{}}
}

// Accept-error backoff, as net/http's: temporary errors such as running
// out of file descriptors are retried after 5 ms, doubling up to 1 s.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// serve accepts connections until Close (it then returns nil) or a
// permanent accept error, which it returns after closing the port and
// both children. Temporary errors are logged and retried with backoff.
func (s *splitListener) serve() error {
	var delay time.Duration
	for {
		c, err := s.ln.Accept()
		if err == nil {
			delay = 0
			go s.route(c)
			continue
		}
		if s.closing.Load() {
			return nil
		}
		if !isTemporary(err) {
			s.Close()
			return fmt.Errorf("accept on %s: %w", s.ln.Addr(), err)
		}
		delay = min(max(2*delay, acceptBackoffMin), acceptBackoffMax)
		s.log.Warn("accept failed; retrying", "err", err, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.plain.done:
			t.Stop()
			return nil
		}
	}
}

// isTemporary reports whether an accept error may go away by itself
// (EMFILE, ENFILE, ECONNABORTED, timeouts...).
func isTemporary(err error) bool {
	var te interface{ Temporary() bool }
	if errors.As(err, &te) && te.Temporary() {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (s *splitListener) route(c net.Conn) {
	if !s.track(c, true) {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReaderSize(c, 1)
	b, err := br.Peek(1)
	c.SetReadDeadline(time.Time{})
	s.track(c, false)
	if err != nil {
		c.Close()
		return
	}
	pc := &peekedConn{Conn: c, r: br}
	if b[0] == 0x16 {
		s.tls.deliver(pc)
	} else {
		s.plain.deliver(pc)
	}
}

// track adds c to or removes it from the connections being routed; it
// refuses to add one once Close has begun.
func (s *splitListener) track(c net.Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.routing, c)
		return true
	}
	if s.closing.Load() {
		return false
	}
	s.routing[c] = struct{}{}
	return true
}

// closeRouting closes the connections still waiting for their first byte.
func (s *splitListener) closeRouting() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.routing {
		c.Close()
	}
}

// Close closes the port and both children.
func (s *splitListener) Close() error {
	var err error
	s.once.Do(func() {
		s.closing.Store(true)
		s.closeRouting()
		err = s.ln.Close()
		s.plain.Close()
		s.tls.Close()
	})
	return err
}

// peekedConn replays the peeked byte before reading the connection.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) {
	if c.r.Buffered() > 0 {
		return c.r.Read(p)
	}
	return c.Conn.Read(p)
}

// chanListener is a net.Listener fed by deliver.
type chanListener struct {
	addr   net.Addr
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
