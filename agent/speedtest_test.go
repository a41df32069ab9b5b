package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// startSpeedtest serves the speedtest on loopback TCP; authorize refuses
// when deny is set.
func startSpeedtest(t *testing.T, deny *atomic.Bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		serveSpeedtest(ctx, ln, func(context.Context, net.Addr) error {
			if deny != nil && deny.Load() {
				return errors.New("denied")
			}
			return nil
		}, slog.New(slog.DiscardHandler))
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("serveSpeedtest did not return after its context ended")
		}
	})
	return ln.Addr().String()
}

func speedtestRequest(t *testing.T, addr string, dir byte, ms uint64) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var hdr [9]byte
	hdr[0] = dir
	binary.BigEndian.PutUint64(hdr[1:], ms)
	if _, err := c.Write(hdr[:]); err != nil {
		t.Fatal(err)
	}
	return c.(*net.TCPConn)
}

func TestSpeedtestDownload(t *testing.T) {
	addr := startSpeedtest(t, nil)
	start := time.Now()
	c := speedtestRequest(t, addr, SpeedtestDownload, 300)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	head := make([]byte, 1<<16)
	if _, err := io.ReadFull(c, head); err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, c) // until the agent closes
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if took < 250*time.Millisecond || took > 5*time.Second {
		t.Fatalf("download of 300ms took %v", took)
	}
	zeros := 0
	for _, b := range head {
		if b == 0 {
			zeros++
		}
	}
	if zeros > len(head)/64 {
		t.Fatalf("%d of %d bytes are zero: not random data", zeros, len(head))
	}
	t.Logf("downloaded %d MiB in %v over loopback", (n+int64(len(head)))>>20, took.Round(time.Millisecond))
}

func TestSpeedtestUpload(t *testing.T) {
	addr := startSpeedtest(t, nil)
	c := speedtestRequest(t, addr, SpeedtestUpload, 1000)
	const size = 3<<20 + 17
	if _, err := io.CopyN(c, zeroReader{}, size); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	reply, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(reply) != 8 || binary.BigEndian.Uint64(reply) != size {
		t.Fatalf("reply %x, want the count %d as 8 bytes", reply, size)
	}
}

func TestSpeedtestRefusals(t *testing.T) {
	var deny atomic.Bool
	addr := startSpeedtest(t, &deny)
	for name, c := range map[string]*net.TCPConn{
		"unknown direction": speedtestRequest(t, addr, 'x', 100),
		"short header":      shortHeader(t, addr),
	} {
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
			t.Errorf("%s: read %d bytes, %v; want a plain close", name, len(b), err)
		}
	}
	deny.Store(true)
	c := speedtestRequest(t, addr, SpeedtestDownload, 1000)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, _ := io.ReadAll(c); len(b) != 0 {
		t.Fatalf("unauthorized peer got %d bytes", len(b))
	}
}

func shortHeader(t *testing.T, addr string) *net.TCPConn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.Write([]byte{SpeedtestDownload, 0, 0})
	c.(*net.TCPConn).CloseWrite()
	return c.(*net.TCPConn)
}

func TestSpeedtestDuration(t *testing.T) {
	for ms, want := range map[uint64]time.Duration{
		0:           0,
		1500:        1500 * time.Millisecond,
		60_000:      MaxSpeedtestDuration,
		3_600_000:   MaxSpeedtestDuration,
		1<<64 - 1:   MaxSpeedtestDuration,
		59_999:      59_999 * time.Millisecond,
		1 << 62:     MaxSpeedtestDuration,
		1<<63 + 123: MaxSpeedtestDuration,
	} {
		if got := speedtestDuration(ms); got != want {
			t.Errorf("speedtestDuration(%d) = %v, want %v", ms, got, want)
		}
	}
}

// TestSpeedtestStopsOnCancel: a running download ends when the server
// stops, instead of holding shutdown for the whole duration.
func TestSpeedtestStopsOnCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		serveSpeedtest(ctx, ln, func(context.Context, net.Addr) error { return nil }, slog.New(slog.DiscardHandler))
	}()
	c := speedtestRequest(t, ln.Addr().String(), SpeedtestDownload, 60_000)
	if _, err := io.ReadFull(c, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	cancel()
	go io.Copy(io.Discard, c)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("serveSpeedtest still running 5s after cancel with a 60s download open")
	}
}

type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

// TestOwnerOnlyWithoutAddress: a connection reset before it is
// authorized may have no remote address; it is refused, not a panic.
func TestOwnerOnlyWithoutAddress(t *testing.T) {
	if err := ownerOnly(nil, "alice@example.com")(t.Context(), nil); err == nil {
		t.Fatal("ownerOnly accepted a connection without a remote address")
	}
}
