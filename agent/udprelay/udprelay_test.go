package udprelay_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/devmesh/devmesh/agent/udprelay"
)

func TestFrames(t *testing.T) {
	big := bytes.Repeat([]byte{7}, udprelay.MaxDatagram)
	var stream bytes.Buffer
	payloads := [][]byte{{}, []byte("a"), []byte("hello"), big}
	for _, p := range payloads {
		if err := udprelay.WriteFrame(&stream, p); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := stream.Len(), 4*2+1+5+len(big); got != want {
		t.Fatalf("stream is %d bytes, want %d", got, want)
	}
	if !bytes.HasPrefix(stream.Bytes(), []byte{0, 0, 0, 1, 'a', 0, 5, 'h'}) {
		t.Fatalf("not 2-byte big-endian lengths: % x", stream.Bytes()[:8])
	}
	buf := make([]byte, udprelay.MaxDatagram)
	for i, want := range payloads {
		n, err := udprelay.ReadFrame(&stream, buf)
		if err != nil || !bytes.Equal(buf[:n], want) {
			t.Fatalf("frame %d: %d bytes, %v", i, n, err)
		}
	}
	if _, err := udprelay.ReadFrame(&stream, buf); err != io.EOF {
		t.Fatalf("at the end: %v, want EOF", err)
	}
	if err := udprelay.WriteFrame(&stream, make([]byte, udprelay.MaxDatagram+1)); !errors.Is(err, udprelay.ErrTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
	for name, tc := range map[string]struct {
		in  []byte
		buf int
	}{
		"cut in the length":  {[]byte{0}, 10},
		"cut in the payload": {[]byte{0, 3, 'a'}, 10},
		"larger than buf":    {[]byte{0, 3, 'a', 'b', 'c'}, 2},
	} {
		if _, err := udprelay.ReadFrame(bytes.NewReader(tc.in), make([]byte, tc.buf)); err == nil || err == io.EOF {
			t.Errorf("%s: %v, want an error other than EOF", name, err)
		}
	}
}

func TestHeader(t *testing.T) {
	var b bytes.Buffer
	udprelay.WriteHeader(&b, 5353)
	if !bytes.Equal(b.Bytes(), []byte{1, 0x14, 0xe9}) {
		t.Fatalf("header % x", b.Bytes())
	}
	if p, err := udprelay.ReadHeader(&b); p != 5353 || err != nil {
		t.Fatalf("ReadHeader: %d, %v", p, err)
	}
	for name, in := range map[string][]byte{"version 2": {2, 0, 53}, "port 0": {1, 0, 0}, "short": {1, 0}} {
		if _, err := udprelay.ReadHeader(bytes.NewReader(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestServe runs the relay on loopback TCP to a UDP echo server, with a
// refusing Authorize for one peer and a short idle timeout.
func TestServe(t *testing.T) {
	echo, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		buf := make([]byte, udprelay.MaxDatagram)
		for {
			n, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			echo.WriteTo([]byte(strings.ToUpper(string(buf[:n]))), from)
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refuse := make(chan bool, 1)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- udprelay.Serve(ctx, ln, udprelay.ServerOptions{
			IdleTimeout: 300 * time.Millisecond,
			Authorize: func(context.Context, net.Addr) error {
				if <-refuse {
					return errors.New("not the owner")
				}
				return nil
			},
		})
	}()
	open := func(allow bool) (net.Conn, *bufio.Reader) {
		refuse <- !allow
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		udprelay.WriteHeader(c, uint16(echo.LocalAddr().(*net.UDPAddr).Port))
		return c, bufio.NewReader(c)
	}
	c, r := open(true)
	buf := make([]byte, udprelay.MaxDatagram)
	for _, msg := range []string{"one", "two", strings.Repeat("x", 60000)} {
		udprelay.WriteFrame(c, []byte(msg))
		n, err := udprelay.ReadFrame(r, buf)
		if err != nil || string(buf[:n]) != strings.ToUpper(msg) {
			t.Fatalf("round trip of %d bytes: %d bytes back, %v", len(msg), n, err)
		}
	}
	start := time.Now()
	if _, err := udprelay.ReadFrame(r, buf); err != io.EOF {
		t.Fatalf("idle flow: %v, want EOF", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 2*time.Second {
		t.Fatalf("idle flow closed after %v, want about 300ms", d)
	}
	c.Close()

	c, r = open(false)
	udprelay.WriteFrame(c, []byte("let me in"))
	if n, err := udprelay.ReadFrame(r, buf); err == nil {
		t.Fatalf("refused peer got %q", buf[:n])
	}
	c.Close()

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}
