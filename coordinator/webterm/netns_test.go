//go:build linux

package webterm_test

import (
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/devmesh/devmesh/coordinator/coordtest"
	"github.com/devmesh/devmesh/internal/browsertest"
)

// TestBrowserTerminalRelayed runs Chromium in a network namespace whose
// firewall drops all UDP, so WebRTC cannot connect: the page must fall
// back to the relay, say so, and work. Root only (network namespaces).
func TestBrowserTerminalRelayed(t *testing.T) {
	chromium := browsertest.Chromium(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs Chromium in a network namespace without UDP")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install the Debian packages iproute2 and iptables", tool)
		}
	}
	coord := coordtest.Start(t, coordtest.WithoutProvisioning())
	startAgent(t, coord)

	ns, hostIP := udpLessNamespace(t)
	// The browser reaches the coordinator at the host's end of the veth.
	cu, _ := url.Parse(coord.URL())
	front := forward(t, net.JoinHostPort(hostIP, "0"), cu.Host)
	base := "http://" + front

	wrapper := filepath.Join(t.TempDir(), "chromium-in-netns")
	script := fmt.Sprintf("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n", ns, chromium)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	// chromedp talks to Chromium over a pipe, which crosses namespaces.
	r := newBrowserAt(t, wrapper)
	login(t, r, base, "bob")
	openTerminal(t, r, base, "relayed")
	typeInto(t, r, "echo $((6*7+1))\r")
	waitScreen(t, r, "43\n")
	t.Logf("measured: browser keystroke echo, relayed (WebSocket via the coordinator, UDP blocked): %.2f ms", eval[float64](t, r, echoLatencyJS))
	browsertest.Screenshot(t, r, "terminal-relayed", browsertest.Desktop)
}

// udpLessNamespace makes a network namespace joined to the host by a
// veth pair, with all UDP dropped inside it.
func udpLessNamespace(t *testing.T) (ns, hostIP string) {
	t.Helper()
	var b [2]byte
	rand.Read(b[:])
	id := fmt.Sprintf("%02x%02x", b[0], b[1])
	ns = "wtb-" + id
	oct := int(b[0])%250 + 2
	hostIP, nsIP := fmt.Sprintf("10.237.%d.1", oct), fmt.Sprintf("10.237.%d.2", oct)
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	sh("ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	vh, vn := "wth-"+id, "wtn-"+id
	sh("ip", "link", "add", vh, "type", "veth", "peer", "name", vn)
	t.Cleanup(func() { exec.Command("ip", "link", "del", vh).Run() })
	sh("ip", "link", "set", vn, "netns", ns)
	sh("ip", "addr", "add", hostIP+"/30", "dev", vh)
	sh("ip", "link", "set", vh, "up")
	sh("ip", "-n", ns, "addr", "add", nsIP+"/30", "dev", vn)
	sh("ip", "-n", ns, "link", "set", vn, "up")
	sh("ip", "-n", ns, "link", "set", "lo", "up")
	sh("ip", "netns", "exec", ns, "iptables", "-A", "OUTPUT", "-p", "udp", "-j", "DROP")
	sh("ip", "netns", "exec", ns, "iptables", "-A", "INPUT", "-p", "udp", "-j", "DROP")
	return ns, hostIP
}

// forward relays TCP connections from listen to target until the test
// ends, and returns the listening address.
func forward(t *testing.T, listen, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, d)
			mu.Unlock()
			wg.Go(func() { io.Copy(d, c); d.Close() })
			wg.Go(func() { io.Copy(c, d); c.Close() })
		}
	})
	return ln.Addr().String()
}
