package agent_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devmesh/devmesh/agent"
	"github.com/devmesh/devmesh/agent/udprelay"
	"github.com/devmesh/devmesh/coordinator"
	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/coordtest"
	"github.com/devmesh/devmesh/node"
	"github.com/devmesh/devmesh/tunnel"
)

// TestForwardsReachTheWorkspaceLoopback runs the real agent and reaches
// services bound to the workspace's 127.0.0.1 from the owner's device: TCP
// straight to the agent's tailnet address (the agent's fallback, no SSH),
// UDP through tunnel's forwarding and the agent's relay. An admin's device
// (in the agent's netmap under AdminsReachAll) is refused by both; another
// user's device does not even see the agent.
func TestForwardsReachTheWorkspaceLoopback(t *testing.T) {
	coord := coordtest.Start(t, func(c *coordinator.Config) { c.Policy.AdminsReachAll = true })
	addr := netip.MustParseAddr(startBobsAgent(t, coord).Addresses[0])
	ctx := t.Context()
	rootUser, _ := coord.Store().UserByName(ctx, "root")
	bobUser, _ := coord.Store().UserByName(ctx, "bob")
	carolUser := coord.CreateUser(t, "carol", false)
	bobDev := startNode(t, coord.URL(), coord.AuthKey(t, bobUser, false, true), "bob-laptop")
	adminDev := startNode(t, coord.URL(), coord.AuthKey(t, rootUser, false, true), "admin-laptop")
	carolDev := startNode(t, coord.URL(), coord.AuthKey(t, carolUser, false, true), "carol-laptop")

	tcpPort := serveLoopbackTCP(t)
	udpPort, udpSeen := serveLoopbackUDP(t)
	closedPort := freeLoopbackPort(t)

	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	dialTCP := func(n *node.Node, port uint16) (string, error) {
		c, err := n.Dial(dctx, "tcp", netip.AddrPortFrom(addr, port).String())
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintln(c, "ping")
		line, err := bufio.NewReader(c).ReadString('\n')
		return line, err
	}

	// The owner: TCP straight over the tailnet.
	if got, err := dialTCP(bobDev, tcpPort); got != "workspace says ping\n" {
		t.Fatalf("owner, TCP to the workspace's 127.0.0.1:%d: %q, %v", tcpPort, got, err)
	}
	if _, err := dialTCP(bobDev, closedPort); !node.IsRefused(err) {
		t.Fatalf("owner, TCP to a port nothing listens on: %v, want refused", err)
	}

	// The owner: UDP through the relay, as `devmesh port-forward --udp`.
	spec, _ := tunnel.ParseForwardSpec("udp", fmt.Sprintf("127.0.0.1:0:%d", udpPort))
	fw, err := tunnel.ListenForwards(tunnel.ForwardOptions{Specs: []tunnel.ForwardSpec{spec}})
	if err != nil {
		t.Fatal(err)
	}
	go fw.Run(ctx, bobDev.Dial, addr)
	defer fw.Close()
	uc, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(fw.Addrs()[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if got, err := udpRoundTrip(uc, "first", 10); got != "workspace says first" {
		t.Fatalf("owner, UDP to the workspace's 127.0.0.1:%d: %q, %v", udpPort, got, err)
	}
	var rtts []time.Duration
	for i := range 50 {
		start := time.Now()
		msg := fmt.Sprint("seq", i)
		if got, err := udpRoundTrip(uc, msg, 1); got != "workspace says "+msg {
			t.Fatalf("UDP round trip %d: %q, %v", i, got, err)
		}
		rtts = append(rtts, time.Since(start))
	}
	slices.Sort(rtts)
	t.Logf("measured: UDP round trip through the relay on loopback: median %v, p90 %v, max %v",
		rtts[len(rtts)/2], rtts[len(rtts)*9/10], rtts[len(rtts)-1])

	// An admin's device reaches the agent's address, and is refused.
	if got, err := dialTCP(adminDev, tcpPort); !node.IsRefused(err) {
		t.Fatalf("admin, TCP to the workspace's loopback: %q, %v; want refused", got, err)
	}
	c, err := adminDev.Dial(dctx, "tcp", netip.AddrPortFrom(addr, udprelay.Port).String())
	if err != nil {
		t.Fatalf("the admin's device cannot even connect to the relay (policy changed?): %v", err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	udprelay.WriteHeader(c, udpPort)
	udprelay.WriteFrame(c, []byte("admin"))
	if b, _ := io.ReadAll(c); len(b) != 0 {
		t.Fatalf("the relay answered the admin's device with %q", b)
	}
	c.Close()
	if udpSeen("admin") {
		t.Fatal("the admin's datagram reached the workspace")
	}

	// Another user: the agent is not in the netmap at all.
	for _, port := range []uint16{tcpPort, udprelay.Port} {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := carolDev.Dial(cctx, "tcp", netip.AddrPortFrom(addr, port).String())
		ccancel()
		if !errors.Is(err, node.ErrNoPeer) {
			if c != nil {
				c.Close()
			}
			t.Fatalf("another user's device, port %d: %v, want ErrNoPeer", port, err)
		}
	}
}

// startBobsAgent creates users root (admin) and bob, bob's external
// workspace "dev", runs its real agent until the test ends, and returns
// the agent's view once it is connected and has published its host key.
func startBobsAgent(t *testing.T, coord *coordtest.Coordinator) client.Agent {
	t.Helper()
	ctx := t.Context()
	anon, _ := client.New(coord.URL(), "")
	sess, err := anon.CreateFirstUser(ctx, client.LoginRequest{Username: "root", Password: "root-password-1"})
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := client.New(coord.URL(), sess.Token)
	if _, err := admin.CreateUser(ctx, client.CreateUserRequest{Username: "bob", Password: "bob-password-1"}); err != nil {
		t.Fatal(err)
	}
	bs, err := anon.Login(ctx, client.LoginRequest{Username: "bob", Password: "bob-password-1"})
	if err != nil {
		t.Fatal(err)
	}
	bob, _ := client.New(coord.URL(), bs.Token)
	created, err := bob.CreateWorkspace(ctx, client.CreateWorkspaceRequest{Name: "dev", External: true})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Options{URL: coord.URL(), Token: created.AgentToken, StateDir: t.TempDir(), Logger: logger(t, "agent")})
	if err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ws, err := bob.Workspace(ctx, "dev")
		if err != nil {
			t.Fatal(err)
		}
		if ag := ws.Agents[0]; ag.Status == client.AgentConnected && len(ag.Addresses) > 0 && ag.SSHHostKey != "" {
			return ag
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent not connected: %+v", ws.Agents[0])
		}
	}
}

// serveLoopbackTCP answers each line on 127.0.0.1 with "workspace says
// LINE", until the test ends.
func serveLoopbackTCP(t *testing.T) uint16 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s := bufio.NewScanner(c)
				for s.Scan() {
					fmt.Fprintf(c, "workspace says %s\n", s.Text())
				}
			}()
		}
	}()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// serveLoopbackUDP answers each datagram on 127.0.0.1 with "workspace
// says DATAGRAM"; seen reports whether a datagram was received.
func serveLoopbackUDP(t *testing.T) (port uint16, seen func(string) bool) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	var mu sync.Mutex
	got := map[string]bool{} // guarded by mu
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			mu.Lock()
			got[string(buf[:n])] = true
			mu.Unlock()
			pc.WriteTo([]byte("workspace says "+string(buf[:n])), from)
		}
	}()
	return uint16(pc.LocalAddr().(*net.UDPAddr).Port), func(s string) bool {
		mu.Lock()
		defer mu.Unlock()
		return got[s]
	}
}

// freeLoopbackPort returns a TCP port on 127.0.0.1 that nothing listens on.
func freeLoopbackPort(t *testing.T) uint16 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// udpRoundTrip sends msg and waits a second for the reply, tries times.
func udpRoundTrip(c *net.UDPConn, msg string, tries int) (string, error) {
	buf := make([]byte, 2048)
	var err error
	for range tries {
		c.Write([]byte(msg))
		c.SetReadDeadline(time.Now().Add(time.Second))
		var n int
		if n, err = c.Read(buf); err == nil {
			return strings.TrimSpace(string(buf[:n])), nil
		}
	}
	return "", err
}
