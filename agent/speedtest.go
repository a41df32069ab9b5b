package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// The speedtest protocol on tailnet port SpeedtestPort. The client sends
// one direction byte, SpeedtestDownload or SpeedtestUpload, then the
// test's duration in milliseconds as 8 bytes big-endian (capped at
// MaxSpeedtestDuration).
//   - Download: the agent writes pseudo-random bytes until the duration
//     has elapsed, then closes the connection.
//   - Upload: the agent reads and discards until EOF (the client closes
//     its writing side), then writes the number of bytes it read as 8
//     bytes big-endian and closes.
const (
	SpeedtestDownload    = 'd'
	SpeedtestUpload      = 'u'
	MaxSpeedtestDuration = 60 * time.Second
)

const (
	// speedtestHeaderTimeout bounds waiting for the 9-byte request.
	speedtestHeaderTimeout = 10 * time.Second
	// speedtestGrace is how long past the duration an upload may take
	// to end (data in flight, slow close).
	speedtestGrace = 10 * time.Second
	// maxSpeedtests bounds concurrent tests; more are closed at once.
	maxSpeedtests = 4
)

// serveSpeedtest serves the speedtest protocol on ln until ctx ends, then
// closes ln and every connection, and returns once their handlers have.
// Each connection must pass authorize first.
func serveSpeedtest(ctx context.Context, ln net.Listener, authorize func(context.Context, net.Addr) error, log *slog.Logger) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{} // guarded by mu; nil once stopping
	)
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		conns = nil
		mu.Unlock()
	})
	defer stop()
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		mu.Lock()
		if conns == nil || len(conns) >= maxSpeedtests {
			mu.Unlock()
			c.Close()
			continue
		}
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			defer func() {
				c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
			if err := authorize(ctx, c.RemoteAddr()); err != nil {
				log.Warn("speedtest: connection not authorized", "remote", c.RemoteAddr().String(), "err", err)
				return
			}
			if err := handleSpeedtest(c); err != nil {
				log.Debug("speedtest", "remote", c.RemoteAddr().String(), "err", err)
			}
		})
	}
}

// handleSpeedtest runs one test on c; the caller closes c.
func handleSpeedtest(c net.Conn) error {
	var hdr [9]byte
	c.SetReadDeadline(time.Now().Add(speedtestHeaderTimeout))
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return err
	}
	d := speedtestDuration(binary.BigEndian.Uint64(hdr[1:]))
	switch hdr[0] {
	case SpeedtestDownload:
		c.SetReadDeadline(time.Time{})
		return speedtestSend(c, d)
	case SpeedtestUpload:
		return speedtestReceive(c, d)
	}
	return errors.New("unknown speedtest direction")
}

// speedtestDuration converts the requested milliseconds, capped.
func speedtestDuration(ms uint64) time.Duration {
	if ms >= uint64(MaxSpeedtestDuration/time.Millisecond) {
		return MaxSpeedtestDuration
	}
	return time.Duration(ms) * time.Millisecond
}

// speedtestSend writes pseudo-random bytes until d has elapsed. The
// write deadline ends the last write; its timeout is the normal end.
func speedtestSend(c net.Conn, d time.Duration) error {
	var seed [32]byte
	for i := range seed {
		seed[i] = byte(rand.Uint32())
	}
	buf := make([]byte, 64<<10)
	rand.NewChaCha8(seed).Read(buf)
	c.SetWriteDeadline(time.Now().Add(d))
	for {
		if _, err := c.Write(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil
			}
			return err
		}
	}
}

// speedtestReceive counts bytes until EOF and writes the count.
func speedtestReceive(c net.Conn, d time.Duration) error {
	c.SetReadDeadline(time.Now().Add(d + speedtestGrace))
	n, err := io.Copy(io.Discard, c)
	if err != nil {
		return err
	}
	var out [8]byte
	binary.BigEndian.PutUint64(out[:], uint64(n))
	c.SetWriteDeadline(time.Now().Add(speedtestHeaderTimeout))
	_, err = c.Write(out[:])
	return err
}
