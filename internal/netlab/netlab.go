//go:build linux

// Package netlab builds throwaway networks of Linux network namespaces for
// tests: an "internet" segment (198.18.0.0/24, a bridge in a namespace of
// its own) with public hosts on it, and private LANs (192.168.N.0/24)
// behind router namespaces that NAT the way home and carrier routers do.
// Nothing touches the host's own network: every interface, route and
// iptables rule lives inside a namespace the lab created, and deleting
// the namespaces removes them all.
//
// Each Lab belongs to one test and is torn down by t.Cleanup, even when
// the test fails or panics. Namespaces are named nl<pid>-<n>-<role> after
// the test process, so a later run deletes what a crashed one (a dead pid)
// left behind.
package netlab

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// nsDir is where `ip netns` keeps its named namespaces.
const nsDir = "/var/run/netns"

// labSeq numbers the labs of this process, so parallel tests get
// distinct namespace names.
var labSeq atomic.Int32

var cleanOnce sync.Once

// Lab is one test's network: the internet segment and whatever hosts and
// LANs the test adds.
type Lab struct {
	t      testing.TB
	prefix string // nl<pid>-<n>-
	inet   string // the internet namespace, holding bridge br0

	mu    sync.Mutex // guards the fields below
	nss   []string   // namespaces to delete, in creation order
	env   []string   // added to every process's environment
	ca    *labCA     // made by the first certFor
	nhost int        // public hosts made so far
	nlan  int        // LANs made so far
}

// Skip skips t unless the lab can run here: Linux, root, ip and iptables.
func Skip(t testing.TB) {
	t.Helper()
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("netlab: needs Linux and root for network namespaces (CI runs it as root)")
	}
	for _, tool := range []string{"ip", "iptables", "conntrack"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("netlab: needs %s (apt-get install iproute2 iptables conntrack)", tool)
		}
	}
}

// New makes the internet segment of a new lab; everything goes away when
// the test ends. It skips the test when the lab cannot run here.
func New(t testing.TB) *Lab {
	t.Helper()
	Skip(t)
	cleanOnce.Do(func() { cleanLeftovers(t) })
	l := &Lab{t: t, prefix: fmt.Sprintf("nl%d-%d-", os.Getpid(), labSeq.Add(1))}
	t.Cleanup(l.teardown)
	l.inet = l.newNS("inet")
	l.ns(l.inet, "link", "add", "br0", "type", "bridge")
	l.ns(l.inet, "link", "set", "br0", "up")
	return l
}

// Env returns the environment variables the lab adds to every process
// it runs (SSL_CERT_FILE once a TLS coordinator exists).
func (l *Lab) Env() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.env...)
}

// Internet is the name of the namespace that holds the internet bridge
// (tcpdump -i br0 there sees every packet between public addresses).
func (l *Lab) Internet() string { return l.inet }

// newNS creates a namespace named after role, with lo up.
func (l *Lab) newNS(role string) string {
	name := l.prefix + role
	l.mu.Lock()
	l.nss = append(l.nss, name)
	l.mu.Unlock()
	l.run("ip", "netns", "add", name)
	l.ns(name, "link", "set", "lo", "up")
	return name
}

// PublicHost adds a host with a public address on the internet segment.
func (l *Lab) PublicHost(role string) *Host {
	l.mu.Lock()
	l.nhost++
	n := l.nhost
	l.mu.Unlock()
	h := &Host{lab: l, NS: l.newNS(role), Addr: netip.AddrFrom4([4]byte{198, 18, 0, byte(n + 1)})}
	l.plug(l.inet, "br0", fmt.Sprintf("p%d", n), h.NS, h.Addr, 24)
	return h
}

// plug connects namespace ns (as eth0, with addr/bits) to bridge br in
// namespace brNS through a veth pair whose bridge end is called port.
func (l *Lab) plug(brNS, br, port, ns string, addr netip.Addr, bits int) {
	l.ns(brNS, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
	l.ns(brNS, "link", "set", port, "master", br, "up")
	l.ns(ns, "addr", "add", fmt.Sprintf("%s/%d", addr, bits), "dev", "eth0")
	l.ns(ns, "link", "set", "eth0", "up")
}

// ns runs `ip -n NS args...`.
func (l *Lab) ns(ns string, args ...string) {
	l.run("ip", append([]string{"-n", ns}, args...)...)
}

// run runs a command on the host (ip and iptables calls that name a
// namespace), failing the test if it fails.
func (l *Lab) run(name string, args ...string) string {
	l.t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("netlab: %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// teardown deletes the lab's namespaces, newest first, after killing
// whatever still runs in them. Deleting a namespace deletes its veths,
// bridges, routes and iptables rules.
func (l *Lab) teardown() {
	l.mu.Lock()
	nss := l.nss
	l.nss = nil
	l.mu.Unlock()
	for i := len(nss) - 1; i >= 0; i-- {
		deleteNS(nss[i])
	}
}
