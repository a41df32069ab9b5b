package node_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/coordtest"
	"github.com/devmesh/devmesh/node"
)

func logger(t *testing.T) *slog.Logger {
	if os.Getenv("DEVMESH_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return nil
}

func startNode(t *testing.T, c *coordtest.Coordinator, authKey, dir, host string) *node.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	n, err := node.Start(ctx, node.Options{ControlURL: c.URL(), AuthKey: authKey, Dir: dir, Hostname: host, Logger: logger(t)})
	if err != nil {
		t.Fatalf("start %s: %v", host, err)
	}
	t.Logf("node %s: tsnet start to Running in %v", host, time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() { n.Close() })
	return n
}

// serveOneByte serves on port: each connection gets one byte, then is
// closed.
func serveOneByte(t *testing.T, n *node.Node, port int) {
	t.Helper()
	ln, err := n.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Write([]byte{1})
			conn.Close()
		}
	}()
}

// echoServer serves on port 7000: reads all input, then writes back its
// SHA-256 followed by 1 MiB of the server's own random data.
func serveTransfer(t *testing.T, n *node.Node) []byte {
	t.Helper()
	ln, err := n.Listen("tcp", ":7000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	reply := make([]byte, 1<<20)
	rand.Read(reply)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				h := sha256.New()
				if _, err := io.CopyN(h, c, 1<<20); err != nil {
					t.Logf("transfer server: read: %v", err)
					return
				}
				c.Write(h.Sum(nil))
				c.Write(reply)
			}()
		}
	}()
	return reply
}

// transfer sends 1 MiB to addr and reads 1 MiB back, checking both.
func transfer(ctx context.Context, n *node.Node, addr string, want []byte) error {
	c, err := n.Dial(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	out := make([]byte, 1<<20)
	rand.Read(out)
	sum := sha256.Sum256(out)
	go c.Write(out)
	got := make([]byte, 32+len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("read reply: %w", err)
	}
	if !bytes.Equal(got[:32], sum[:]) {
		return fmt.Errorf("peer received corrupted data")
	}
	if !bytes.Equal(got[32:], want) {
		return fmt.Errorf("received corrupted data")
	}
	return nil
}

func TestTwoNodesSameUserDirect(t *testing.T) {
	c := coordtest.Start(t)
	alice := c.CreateUser(t, "alice", false)
	key := c.AuthKey(t, alice, true, false)
	a := startNode(t, c, key, t.TempDir(), "a")
	b := startNode(t, c, key, t.TempDir(), "b")
	bIP, _ := b.Addrs()
	reply := serveTransfer(t, b)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	if err := transfer(ctx, a, netip.AddrPortFrom(bIP, 7000).String(), reply); err != nil {
		t.Fatalf("1 MiB each way: %v", err)
	}
	t.Logf("1 MiB each way (first connection, includes path setup): %v", time.Since(start).Round(time.Millisecond))

	pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer pcancel()
	start = time.Now()
	res, err := a.WaitDirect(pctx, bIP)
	if err != nil || !res.Direct {
		t.Fatalf("no direct path within 10s: %+v, %v", res, err)
	}
	t.Logf("direct path to %s after %v, latency %v", res.Endpoint, time.Since(start).Round(time.Millisecond), res.Latency)

	start = time.Now()
	if err := transfer(ctx, a, netip.AddrPortFrom(bIP, 7000).String(), reply); err != nil {
		t.Fatalf("1 MiB each way over direct path: %v", err)
	}
	t.Logf("1 MiB each way over the direct path: %v", time.Since(start).Round(time.Millisecond))
}

func TestUsersAreIsolated(t *testing.T) {
	c := coordtest.Start(t)
	alice := c.CreateUser(t, "alice", false)
	bob := c.CreateUser(t, "bob", false)
	a := startNode(t, c, c.AuthKey(t, alice, false, false), "", "a")
	b := startNode(t, c, c.AuthKey(t, bob, false, false), "", "b")
	aIP, _ := a.Addrs()
	accepted := listenAndCount(t, a, 7000)

	ctx := context.Background()
	st, err := b.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range st.Peer {
		t.Errorf("bob's node sees peer %v (%v)", p.HostName, p.TailscaleIPs)
	}
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if conn, err := b.Dial(dctx, "tcp", netip.AddrPortFrom(aIP, 7000).String()); err == nil {
		conn.Close()
		t.Fatal("bob's node connected to alice's node")
	} else if !errors.Is(err, node.ErrNoPeer) {
		t.Errorf("dial error = %v, want ErrNoPeer", err)
	}
	// No WireGuard path either: a disco ping gets no answer.
	if _, err := b.Ping(dctx, aIP); err == nil {
		t.Fatal("bob's node got a disco pong from alice's node")
	}
	if n := accepted(); n != 0 {
		t.Fatalf("alice's node accepted %d connections from bob's", n)
	}
}

// TestReceiverFilterDrops checks packet filtering on the receiver: alice's
// workspace agent has alice's device in its netmap (the device may reach
// it), so its packets do arrive over WireGuard, but the device's filter
// admits nothing from an agent.
func TestReceiverFilterDrops(t *testing.T) {
	c := coordtest.Start(t)
	alice := c.CreateUser(t, "alice", false)
	dev := startNode(t, c, c.AuthKey(t, alice, false, false), "", "laptop")
	agent := startNode(t, c, c.AgentAuthKey(t, alice, 42), "", "ws-agent")
	devIP, _ := dev.Addrs()
	agentIP, _ := agent.Addrs()
	devAccepted := listenAndCount(t, dev, 7000)
	agentAccepted := listenAndCount(t, agent, 7000)

	// Device -> agent works: the agent's filter admits its owner's devices.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := dev.Dial(ctx, "tcp", netip.AddrPortFrom(agentIP, 7000).String())
	if err != nil {
		t.Fatalf("device -> agent: %v", err)
	}
	conn.Close()
	// Agent -> device: the peer is in the agent's netmap and the tunnel
	// is up (the connection above), yet the device's filter drops the SYN.
	dctx, dcancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer dcancel()
	if conn, err := agent.Dial(dctx, "tcp", netip.AddrPortFrom(devIP, 7000).String()); err == nil {
		conn.Close()
		t.Fatal("agent opened a connection to its owner's device")
	} else if errors.Is(err, node.ErrNoPeer) {
		t.Fatalf("agent does not have the device in its netmap (%v): the test would not reach the filter", err)
	}
	if n := devAccepted(); n != 0 {
		t.Fatalf("device accepted %d connections from the agent", n)
	}
	if n := agentAccepted(); n != 1 {
		t.Fatalf("agent accepted %d connections, want 1", n)
	}
}

// listenAndCount accepts TCP connections on port and returns a func
// reporting how many arrived.
func listenAndCount(t *testing.T, n *node.Node, port int) func() int {
	t.Helper()
	ln, err := n.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var count atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			count.Add(1)
			c.Close()
		}
	}()
	return func() int {
		time.Sleep(300 * time.Millisecond)
		return int(count.Load())
	}
}

func TestCoordinatorRestart(t *testing.T) {
	c := coordtest.Start(t)
	alice := c.CreateUser(t, "alice", false)
	key := c.AuthKey(t, alice, true, false)
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	a := startNode(t, c, key, dirA, "a")
	b := startNode(t, c, key, dirB, "b")
	bIP, _ := b.Addrs()
	aIP, _ := a.Addrs()
	reply := serveTransfer(t, b)

	c.Restart(t)
	// Nodes reconnect by themselves; traffic flows again.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var err error
	for ctx.Err() == nil {
		tctx, tcancel := context.WithTimeout(ctx, 10*time.Second)
		err = transfer(tctx, a, netip.AddrPortFrom(bIP, 7000).String(), reply)
		tcancel()
		if err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("traffic after coordinator restart: %v", err)
	}

	// Restarting the nodes themselves (no auth key) keeps their addresses.
	a.Close()
	b.Close()
	a2 := startNode(t, c, "", dirA, "a")
	b2 := startNode(t, c, "", dirB, "b")
	if got, _ := a2.Addrs(); got != aIP {
		t.Errorf("node a address after restart = %v, want %v", got, aIP)
	}
	if got, _ := b2.Addrs(); got != bIP {
		t.Errorf("node b address after restart = %v, want %v", got, bIP)
	}
	reply = serveTransfer(t, b2)
	if err := transfer(ctx, a2, netip.AddrPortFrom(bIP, 7000).String(), reply); err != nil {
		t.Fatalf("traffic after node restart: %v", err)
	}
}
