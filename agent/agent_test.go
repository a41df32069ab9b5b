package agent_test

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/devmesh/devmesh/agent"
	"github.com/devmesh/devmesh/coordinator"
	"github.com/devmesh/devmesh/coordinator/coordtest"
	"github.com/devmesh/devmesh/node"
)

func logger(t *testing.T, who string) *slog.Logger {
	if os.Getenv("DEVMESH_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name(), "who", who)
	}
	return nil
}

// TestOnlyTheOwnerGetsIn: with AdminsReachAll, an admin's device has the
// agent in its netmap and passes the packet filter, so only the agent's
// own WhoIs check stands between it and a shell: SSH and the speedtest
// refuse it, and serve the owner.
func TestOnlyTheOwnerGetsIn(t *testing.T) {
	coord := coordtest.Start(t, func(c *coordinator.Config) { c.Policy.AdminsReachAll = true })
	ctx := context.Background()
	ag := startBobsAgent(t, coord)
	addr := ag.Addresses[0]
	hostKey, _, _, _, err := gossh.ParseAuthorizedKey([]byte(ag.SSHHostKey))
	if err != nil {
		t.Fatal(err)
	}

	rootUser, _ := coord.Store().UserByName(ctx, "root")
	bobUser, _ := coord.Store().UserByName(ctx, "bob")
	adminDev := startNode(t, coord.URL(), coord.AuthKey(t, rootUser, false, true), "admin-laptop")
	bobDev := startNode(t, coord.URL(), coord.AuthKey(t, bobUser, false, true), "bob-laptop")

	dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
	defer dcancel()
	for _, port := range []string{"22", "4444"} {
		c, err := adminDev.Dial(dctx, "tcp", net.JoinHostPort(addr, port))
		if err != nil {
			t.Fatalf("the admin's device cannot even connect to port %s (policy changed?): %v", port, err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if port == "4444" {
			c.Write(speedtestHeader(agent.SpeedtestDownload, 500))
		}
		if b, _ := io.ReadAll(c); len(b) != 0 {
			t.Fatalf("port %s answered the admin's device with %q", port, b)
		}
		c.Close()
	}

	// The owner: SSH with the published host key, and a short download.
	nc, err := bobDev.Dial(dctx, "tcp", net.JoinHostPort(addr, "22"))
	if err != nil {
		t.Fatal(err)
	}
	sc, chans, reqs, err := gossh.NewClientConn(nc, addr, &gossh.ClientConfig{User: "bob", HostKeyCallback: gossh.FixedHostKey(hostKey)})
	if err != nil {
		t.Fatalf("the owner's SSH: %v", err)
	}
	gossh.NewClient(sc, chans, reqs).Close()
	c, err := bobDev.Dial(dctx, "tcp", net.JoinHostPort(addr, "4444"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(speedtestHeader(agent.SpeedtestDownload, 300))
	c.SetDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	n, err := io.Copy(io.Discard, c)
	if err != nil || n == 0 {
		t.Fatalf("the owner's speedtest download: %d bytes, %v", n, err)
	}
	t.Logf("measured: 300ms speedtest download over the tailnet: %.1f MB/s", float64(n)/time.Since(start).Seconds()/1e6)
}

func speedtestHeader(dir byte, ms uint64) []byte {
	b := make([]byte, 9)
	b[0] = dir
	binary.BigEndian.PutUint64(b[1:], ms)
	return b
}

func startNode(t *testing.T, url, authKey, host string) *node.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.Start(ctx, node.Options{ControlURL: url, AuthKey: authKey, Hostname: host, Logger: logger(t, host)})
	if err != nil {
		t.Fatalf("start %s: %v", host, err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// TestSpeedtestSurvivesResets: a client that leaves a download early,
// with data still in flight, resets the connection; the agent then saw
// a nil remote address and panicked while logging the error (the relay
// lab lost its agent that way). Several resets, then a whole download.
func TestSpeedtestSurvivesResets(t *testing.T) {
	coord := coordtest.Start(t)
	ctx := context.Background()
	ag := startBobsAgent(t, coord)
	addr := net.JoinHostPort(ag.Addresses[0], "4444")
	bobUser, _ := coord.Store().UserByName(ctx, "bob")
	bobDev := startNode(t, coord.URL(), coord.AuthKey(t, bobUser, false, true), "bob-laptop")

	dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
	defer dcancel()
	for range 3 {
		c, err := bobDev.Dial(dctx, "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(speedtestHeader(agent.SpeedtestDownload, 5000))
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, 64<<10)); err != nil {
			t.Fatalf("the download's first bytes: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // more arrives, unread
		c.Close()
	}
	c, err := bobDev.Dial(dctx, "tcp", addr)
	if err != nil {
		t.Fatalf("the agent is gone after the resets: %v", err)
	}
	defer c.Close()
	c.Write(speedtestHeader(agent.SpeedtestDownload, 200))
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if n, err := io.Copy(io.Discard, c); err != nil || n == 0 {
		t.Fatalf("a download after the resets: %d bytes, %v", n, err)
	}
}
