package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"tailscale.com/client/local"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/node"
)

const (
	// nodeDir is the tailnet node's state directory in StateDir.
	nodeDir = "node"
	// joinedFile records in StateDir that the node in nodeDir was
	// registered, so a restart needs no auth key.
	joinedFile = "node-joined"
	// nodeStartTimeout bounds one attempt to bring the node up.
	nodeStartTimeout = 45 * time.Second
	// staleAfter is how many start attempts may fail, with the
	// coordinator answering in between, before the saved node is taken
	// to be deleted on the coordinator and the agent registers anew.
	staleAfter = 2
)

// joinTailnet starts the agent's node. With the state of an earlier
// registration it reconnects without an auth key, keeping its node key
// and address; otherwise it asks the coordinator for a single-use auth
// key bound to this agent. It retries until ctx ends.
func (a *Agent) joinTailnet(ctx context.Context, m client.AgentManifest) (*node.Node, error) {
	dir := filepath.Join(a.opts.StateDir, nodeDir)
	marker := filepath.Join(a.opts.StateDir, joinedFile)
	joined := fileExists(marker) && node.HasState(dir)
	failures := 0
	backoff := minBackoff
	for {
		opts := node.Options{
			ControlURL: a.opts.URL,
			Dir:        dir,
			Hostname:   m.WorkspaceName + "-" + m.AgentName,
			Logger:     a.log.With("component", "node"),
			ControlTLS: a.api.TLSConfig(),
		}
		if !joined {
			k, err := retryValue(ctx, a, "get a tailnet auth key", a.api.AgentAuthKey)
			if err != nil {
				return nil, err
			}
			opts.AuthKey = k.Key
		}
		sctx, cancel := context.WithTimeout(ctx, nodeStartTimeout)
		n, err := node.Start(sctx, opts)
		cancel()
		if err == nil {
			if !joined {
				if err := os.WriteFile(marker, []byte("registered\n"), 0o600); err != nil {
					n.Close()
					return nil, fmt.Errorf("record the node registration: %w", err)
				}
			}
			return n, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		a.log.Warn("the tailnet node did not come up; retrying", "err", err, "with_auth_key", !joined)
		if joined {
			// Wait for the coordinator (and check the token) first: a
			// start fails while the coordinator is away too.
			if _, err := retryValue(ctx, a, "fetch the manifest", a.api.AgentManifest); err != nil {
				return nil, err
			}
			if failures++; failures >= staleAfter {
				a.log.Warn("the coordinator no longer knows this agent's node; registering it anew (new address)")
				joined = false
				os.Remove(marker)
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// ownerOnly authorizes a tailnet connection when the peer, as the tailnet
// identifies it (WhoIs), is a node of the workspace owner. Agents never
// appear in an agent's netmap (the coordinator's policy), so WhoIs finds
// no other agent; nodes of other users are not there either, and the
// packet filter drops their packets before they get here. This check is
// the second line.
func ownerOnly(lc *local.Client, owner string) func(ctx context.Context, remote net.Addr) error {
	return func(ctx context.Context, remote net.Addr) error {
		if remote == nil { // a connection reset before it was looked at
			return errors.New("the connection has no remote address")
		}
		ap, err := netip.ParseAddrPort(remote.String())
		if err != nil {
			return fmt.Errorf("remote address %q: %w", remote, err)
		}
		who, err := lc.WhoIs(ctx, ap.String())
		if err != nil {
			return fmt.Errorf("%v is not a known tailnet peer: %w", ap.Addr(), err)
		}
		if who.UserProfile == nil || who.Node == nil {
			return fmt.Errorf("%v: the tailnet gave no owner", ap.Addr())
		}
		if who.UserProfile.LoginName != owner {
			return fmt.Errorf("%v (%s) belongs to %q, not to the workspace owner %q",
				ap.Addr(), who.Node.Name, who.UserProfile.LoginName, owner)
		}
		return nil
	}
}
