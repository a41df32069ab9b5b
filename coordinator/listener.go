package coordinator

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"time"
)

// splitListener serves plain HTTP and TLS on one port: it peeks at each
// connection's first byte (0x16 starts a TLS handshake) and hands the
// connection to the matching child listener.
type splitListener struct {
	ln    net.Listener
	plain *chanListener
	tls   *chanListener
	once  sync.Once
}

func newSplitListener(ln net.Listener) *splitListener {
	s := &splitListener{ln: ln, plain: newChanListener(ln.Addr()), tls: newChanListener(ln.Addr())}
	go s.run()
	return s
}

func (s *splitListener) run() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.Close()
			return
		}
		go s.route(c)
	}
}

func (s *splitListener) route(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReaderSize(c, 1)
	b, err := br.Peek(1)
	c.SetReadDeadline(time.Time{})
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

// Close closes the port and both children.
func (s *splitListener) Close() error {
	var err error
	s.once.Do(func() {
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
