package tunnel

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"sync"

	"golang.org/x/crypto/ssh"

	"github.com/devmesh/devmesh/agent/udprelay"
	"github.com/devmesh/devmesh/node"
)

// FallbackDialer reaches TCP ports of a workspace: over the tailnet to the
// agent's address first (agents take a port they do not serve themselves
// to the workspace's loopback) and, when that is refused, through the
// agent's SSH server, which then connects to that port on the workspace's
// loopback (a direct-tcpip channel, as `ssh -L` opens). The second path
// serves agents that predate the first, which serve nothing but SSH and
// the speedtest on their tailnet address.
type FallbackDialer struct {
	Node     Tailnet  // an in-process node or the daemon
	Endpoint Endpoint // HostKey needed for the fallback
	Logger   *slog.Logger

	mu  sync.Mutex
	ssh *ssh.Client // guarded by mu: opened on the first fallback
}

// Dial dials addr ("ip:port" of the agent) over network. UDP never falls
// back (SSH does not carry datagrams), nor does the agent's UDP relay
// port: the workspace's localhost:4445 is not the relay.
func (d *FallbackDialer) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := d.Node.Dial(ctx, network, addr)
	_, port, _ := net.SplitHostPort(addr)
	if err == nil || network != "tcp" || !node.IsRefused(err) || d.Endpoint.HostKey == nil ||
		port == strconv.Itoa(udprelay.Port) {
		return c, err
	}
	sc, serr := d.sshClient(ctx)
	if serr != nil {
		return nil, err // the tailnet's answer is the more useful one
	}
	if d.Logger != nil {
		d.Logger.Debug("port-forward: nothing listens on the agent's tailnet address; forwarding through SSH to the workspace's localhost", "port", port)
	}
	return sc.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", port))
}

func (d *FallbackDialer) sshClient(ctx context.Context) (*ssh.Client, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ssh != nil {
		return d.ssh, nil
	}
	c, err := DialSSH(ctx, d.Node, d.Endpoint, SSHOptions{})
	if err != nil {
		return nil, err
	}
	d.ssh = c
	go func() {
		c.Wait()
		d.mu.Lock()
		if d.ssh == c {
			d.ssh = nil // redial next time
		}
		d.mu.Unlock()
	}()
	return c, nil
}

// Close closes the SSH connection, if one was opened.
func (d *FallbackDialer) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ssh != nil {
		return d.ssh.Close()
	}
	return nil
}
