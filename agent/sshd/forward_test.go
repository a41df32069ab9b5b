//go:build unix

package sshd

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// startEcho serves an echo service that half-closes after its client
// does, on a TCP or unix listener.
func startEcho(t *testing.T, network, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go serveEcho(ln)
	return ln
}

func serveEcho(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_, _ = io.Copy(c, c)
			if cw, ok := c.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
		}()
	}
}

// checkEcho sends 256 KiB through c, expects them back, then half-closes
// and expects EOF: half-closes must travel through the forward both ways.
func checkEcho(t *testing.T, c net.Conn) {
	t.Helper()
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	data := make([]byte, 256<<10)
	_, _ = rand.Read(data)
	go func() {
		_, _ = c.Write(data)
		_ = c.(interface{ CloseWrite() error }).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read through forward: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("echo through forward returned %d bytes, not the %d sent", len(got), len(data))
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

func TestLocalForwardOpenSSH(t *testing.T) {
	ts := newTestServer(t, nil)
	echo := startEcho(t, "tcp", "127.0.0.1:0")
	port := freePort(t)
	cmd := ts.command(t, "ssh", "-N", "-o", "ExitOnForwardFailure=yes",
		"-L", "127.0.0.1:"+port+":"+echo.Addr().String(), "127.0.0.1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var c net.Conn
	waitFor(t, 10*time.Second, "ssh -L to listen", func() bool {
		var err error
		c, err = net.Dial("tcp", "127.0.0.1:"+port)
		return err == nil
	})
	checkEcho(t, c)
}

func TestRemoteForwardOpenSSH(t *testing.T) {
	ts := newTestServer(t, nil)
	echo := startEcho(t, "tcp", "127.0.0.1:0")
	// Port 0: the server picks one and the client logs it.
	cmd := ts.command(t, "ssh", "-N", "-o", "ExitOnForwardFailure=yes", "-o", "LogLevel=INFO",
		"-R", "127.0.0.1:0:"+echo.Addr().String(), "127.0.0.1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	ports := make(chan string, 1)
	go func() {
		rx := regexp.MustCompile(`Allocated port (\d+) for remote forward`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := rx.FindStringSubmatch(sc.Text()); m != nil {
				ports <- m[1]
			}
		}
	}()
	var port string
	select {
	case port = <-ports:
	case <-time.After(10 * time.Second):
		t.Fatal("ssh -R never reported the allocated port")
	}
	c, err := net.Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	checkEcho(t, c)

	// Killing the client must release the listener on the workspace.
	_ = cmd.Process.Kill()
	waitFor(t, 5*time.Second, "the remote forward listener to close", func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
}

// TestRemoteForwardCancel uses the Go client, which cancels a forward when
// its listener is closed.
func TestRemoteForwardCancel(t *testing.T) {
	ts := newTestServer(t, nil)
	ln, err := ts.client(t).Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go serveEcho(ln)
	addr := ln.Addr().String()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	checkEcho(t, c)
	ln.Close()
	waitFor(t, 5*time.Second, "the canceled forward to stop listening", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
}

func TestUnixSocketForwards(t *testing.T) {
	ts := newTestServer(t, nil)
	client := ts.client(t)
	dir := t.TempDir()

	// ssh -L to a unix socket: direct-streamlocal@openssh.com.
	echo := startEcho(t, "unix", filepath.Join(dir, "echo.sock"))
	c, err := client.Dial("unix", echo.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	checkEcho(t, c)

	// ssh -R with a unix socket: streamlocal-forward@openssh.com.
	path := filepath.Join(dir, "remote.sock")
	ln, err := client.ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	go serveEcho(ln)
	c, err = net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	checkEcho(t, c)
}

func TestLocalForwardRefused(t *testing.T) {
	ts := newTestServer(t, nil)
	if c, err := ts.client(t).Dial("tcp", "127.0.0.1:"+freePort(t)); err == nil {
		c.Close()
		t.Fatal("forward to a closed port succeeded")
	}
}

func TestBindHost(t *testing.T) {
	tests := []struct {
		addr    string
		gateway bool
		want    string
	}{
		{"", false, "127.0.0.1"},
		{"localhost", false, "127.0.0.1"},
		{"0.0.0.0", false, "127.0.0.1"},
		{"192.0.2.1", false, "127.0.0.1"},
		{"127.0.0.5", false, "127.0.0.5"},
		{"::1", false, "::1"},
		{"", true, ""},
		{"*", true, ""},
		{"localhost", true, "127.0.0.1"},
		{"192.0.2.1", true, "192.0.2.1"},
	}
	for _, tt := range tests {
		s := &Server{opts: Options{GatewayPorts: tt.gateway}}
		if got := s.bindHost(tt.addr); got != tt.want {
			t.Errorf("bindHost(%q) with GatewayPorts=%v = %q, want %q", tt.addr, tt.gateway, got, tt.want)
		}
	}
}
