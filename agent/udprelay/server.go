package udprelay

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// ServerOptions configures Serve.
type ServerOptions struct {
	// Authorize, if set, must accept the connecting peer before its
	// header is read; a refused peer's connection is closed.
	Authorize func(ctx context.Context, remote net.Addr) error
	// IdleTimeout ends a flow after this long without a datagram either
	// way (default DefaultIdleTimeout).
	IdleTimeout time.Duration
	// Logger receives per-flow logs; nil discards them.
	Logger *slog.Logger
}

const (
	// DefaultIdleTimeout is the default ServerOptions.IdleTimeout; it is
	// longer than the client's, which normally ends a quiet flow first.
	DefaultIdleTimeout = 2 * time.Minute
	// headerTimeout bounds waiting for the header.
	headerTimeout = 10 * time.Second
)

// Serve serves the relay on ln until ctx ends, then closes ln and every
// flow, and returns once their handlers have. It returns nil then, or
// ln's error if Accept fails before.
func Serve(ctx context.Context, ln net.Listener, o ServerOptions) error {
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Go(func() {
			defer c.Close()
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			if err := serveConn(ctx, c, o); err != nil {
				o.Logger.Debug("udp relay: flow ended", "from", c.RemoteAddr(), "err", err)
			}
		})
	}
}

func serveConn(ctx context.Context, c net.Conn, o ServerOptions) error {
	if o.Authorize != nil {
		actx, cancel := context.WithTimeout(ctx, headerTimeout)
		err := o.Authorize(actx, c.RemoteAddr())
		cancel()
		if err != nil {
			o.Logger.Warn("udp relay: refused a peer", "from", c.RemoteAddr(), "err", err)
			return err
		}
	}
	c.SetReadDeadline(time.Now().Add(headerTimeout))
	br := bufio.NewReader(c)
	port, err := ReadHeader(br)
	if err != nil {
		return err
	}
	c.SetReadDeadline(time.Time{})
	uc, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), port)))
	if err != nil {
		return err
	}
	defer uc.Close()
	o.Logger.Debug("udp relay: flow", "from", c.RemoteAddr(), "port", port)
	idle := NewIdleTimer(o.IdleTimeout, func() { c.Close(); uc.Close() })
	defer idle.Stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer c.Close()
		relayReplies(uc, c, idle)
	}()
	err = relayRequests(br, uc, idle)
	uc.Close()
	<-done
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// relayRequests sends each frame from the client as a datagram until the
// stream or the socket fails.
func relayRequests(r io.Reader, uc *net.UDPConn, idle *IdleTimer) error {
	buf := make([]byte, MaxDatagram)
	for {
		n, err := ReadFrame(r, buf)
		if err != nil {
			return err
		}
		idle.Touch()
		// Nothing listening (yet) is UDP's business: the datagram is
		// lost and the client's retries will tell.
		if _, err := uc.Write(buf[:n]); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
			return err
		}
	}
}

// relayReplies frames each datagram from the service back to the client
// until the socket or the stream fails.
func relayReplies(uc *net.UDPConn, w io.Writer, idle *IdleTimer) {
	buf := make([]byte, MaxDatagram)
	for {
		n, err := uc.Read(buf)
		if errors.Is(err, syscall.ECONNREFUSED) {
			continue // an ICMP error for an earlier datagram
		}
		if err != nil {
			return
		}
		idle.Touch()
		if WriteFrame(w, buf[:n]) != nil {
			return
		}
	}
}

// IdleTimer calls fn once Touch has not been called for its timeout.
type IdleTimer struct {
	timeout time.Duration
	t       *time.Timer
	mu      sync.Mutex // guards last and stopped
	last    time.Time
	stopped bool
}

// NewIdleTimer starts the timer.
func NewIdleTimer(timeout time.Duration, fn func()) *IdleTimer {
	it := &IdleTimer{timeout: timeout, last: time.Now()}
	it.t = time.AfterFunc(timeout, func() {
		it.mu.Lock()
		left := it.timeout - time.Since(it.last)
		if !it.stopped && left > 0 {
			it.t.Reset(left)
		}
		fire := !it.stopped && left <= 0
		it.mu.Unlock()
		if fire {
			fn()
		}
	})
	return it
}

// Touch records activity.
func (it *IdleTimer) Touch() {
	it.mu.Lock()
	it.last = time.Now()
	it.mu.Unlock()
}

// Stop stops the timer: fn is not called after Stop returns, unless it
// was already running.
func (it *IdleTimer) Stop() {
	it.mu.Lock()
	it.stopped = true
	it.mu.Unlock()
	it.t.Stop()
}
