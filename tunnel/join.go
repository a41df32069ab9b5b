package tunnel

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/node"
)

// JoinOptions configures Join.
type JoinOptions struct {
	// Hostname the node presents (default "devmesh-cli").
	Hostname string
	// Logger receives tailscale's logs, at debug level.
	Logger *slog.Logger
}

// joinKeyExpiry bounds the auth key Join mints: it is used at once.
const joinKeyExpiry = "5m"

// Join starts an in-memory, ephemeral node for one command: it mints a
// single-use ephemeral auth key through api (the caller's session) and
// joins the tailnet with it. No daemon is involved. Stop the node with
// Leave.
func Join(ctx context.Context, api *client.Client, opts JoinOptions) (*node.Node, error) {
	k, err := api.CreateAuthKey(ctx, client.CreateAuthKeyRequest{Ephemeral: true, Expiry: joinKeyExpiry})
	if err != nil {
		return nil, fmt.Errorf("get a tailnet auth key: %w", err)
	}
	if opts.Hostname == "" {
		opts.Hostname = "devmesh-cli"
	}
	n, err := node.Start(ctx, node.Options{
		ControlURL: api.URL().String(),
		AuthKey:    k.Key,
		Hostname:   opts.Hostname,
		Ephemeral:  true,
		Logger:     opts.Logger,
		ControlTLS: api.TLSConfig(), // the pinned certificate, if any
	})
	if err != nil {
		return nil, fmt.Errorf("join the tailnet: %w", err)
	}
	return n, nil
}

// leaveTimeout bounds the logout in Leave.
const leaveTimeout = 2 * time.Second

// Leave logs an ephemeral node out, so that the coordinator removes it at
// once instead of after its disconnect timeout, and closes it. It takes
// at most a few seconds; a failed logout is not an error (the node is
// removed later anyway).
func Leave(n *node.Node) error {
	if n == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), leaveTimeout)
	defer cancel()
	n.LocalClient().Logout(ctx)
	return n.Close()
}
