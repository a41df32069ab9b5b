// Package tunneltest starts stand-ins for a workspace agent in tests of
// client-side connectivity: a real tailnet node joined with an agent auth
// key, serving the real SSH server (agent/sshd) on port 22, the speedtest
// protocol on port 4444 and the real UDP relay (agent/udprelay) on port
// 4445, which reaches UDP services on this host's 127.0.0.1. It does not
// need `devmesh agent`.
package tunneltest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/devmesh/devmesh/agent/sshd"
	"github.com/devmesh/devmesh/agent/udprelay"
	"github.com/devmesh/devmesh/coordinator/coordtest"
	"github.com/devmesh/devmesh/node"
)

// Logger returns a debug logger to stderr when DEVMESH_TEST_LOG is set,
// else nil (discard).
func Logger(t testing.TB) *slog.Logger {
	if os.Getenv("DEVMESH_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return nil
}

// StartNode starts an in-memory node with authKey, closed when the test
// ends.
func StartNode(t testing.TB, c *coordtest.Coordinator, authKey, hostname string) *node.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := node.Start(ctx, node.Options{ControlURL: c.URL(), AuthKey: authKey, Hostname: hostname, Logger: Logger(t)})
	if err != nil {
		t.Fatalf("start node %s: %v", hostname, err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// Agent is a running stand-in agent.
type Agent struct {
	Node    *node.Node
	Addr    netip.Addr // tailnet IPv4
	Signer  ssh.Signer // SSH host key
	HostKey string     // its public key in authorized_keys format, as agents publish it
	Dir     string     // the SSH sessions' working directory
	SSH     *sshd.Server
}

// StartAgent joins the tailnet with an agent auth key (see
// coordtest.AgentAuthKey) and serves SSH, the speedtest and the UDP
// relay. Everything
// stops when the test ends.
func StartAgent(t testing.TB, c *coordtest.Coordinator, agentAuthKey string) *Agent {
	t.Helper()
	n := StartNode(t, c, agentAuthKey, "agent")
	a := &Agent{Node: n, Signer: NewSigner(t), Dir: t.TempDir()}
	a.Addr, _ = n.Addrs()
	a.HostKey = string(ssh.MarshalAuthorizedKey(a.Signer.PublicKey()))
	srv, err := sshd.New(sshd.Options{
		HostSigner: a.Signer,
		Authorize:  sshd.AllowAll, // the tailnet's packet filter already decided
		Logger:     Logger(t),
		Dir:        a.Dir,
		Env:        []string{"DEVMESH_TEST_AGENT=1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	a.SSH = srv
	ln, err := n.Listen("tcp", ":22")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	st, err := n.Listen("tcp", ":4444")
	if err != nil {
		t.Fatal(err)
	}
	go ServeSpeedtest(st)
	relay, err := n.Listen("tcp", fmt.Sprintf(":%d", udprelay.Port))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	relayDone := make(chan struct{})
	go func() {
		defer close(relayDone)
		udprelay.Serve(ctx, relay, udprelay.ServerOptions{Logger: Logger(t)})
	}()
	t.Cleanup(func() {
		cancel()
		<-relayDone
		st.Close()
		srv.Close()
	})
	return a
}

// NewSigner returns a fresh ed25519 SSH key.
func NewSigner(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// maxSpeedtest bounds a test the server runs.
const maxSpeedtest = time.Minute

// ServeSpeedtest serves the speedtest protocol (see tunnel.SpeedtestPort)
// on ln until ln is closed.
func ServeSpeedtest(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go serveSpeedtestConn(c)
	}
}

func serveSpeedtestConn(c net.Conn) error {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var hdr [9]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return err
	}
	d := min(time.Duration(binary.BigEndian.Uint64(hdr[1:]))*time.Millisecond, maxSpeedtest)
	c.SetDeadline(time.Now().Add(d + 30*time.Second))
	switch hdr[0] {
	case 'd':
		buf := make([]byte, 128<<10)
		rand.Read(buf)
		for end := time.Now().Add(d); time.Now().Before(end); {
			if _, err := c.Write(buf); err != nil {
				return err
			}
		}
		return nil
	case 'u':
		n, err := io.Copy(io.Discard, c)
		if err != nil {
			return err
		}
		var reply [8]byte
		binary.BigEndian.PutUint64(reply[:], uint64(n))
		_, err = c.Write(reply[:])
		return err
	}
	return errors.New("unknown direction")
}
