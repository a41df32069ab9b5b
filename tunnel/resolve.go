package tunnel

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/devmesh/devmesh/coordinator/client"
)

// ResolveOptions configures Resolve.
type ResolveOptions struct {
	// RequireHostKey also needs the agent's published SSH host key (for
	// SSH, which verifies it).
	RequireHostKey bool
	// Wait polls until the agent is connected (and has published its
	// host key if required) or ctx ends. Without it an unavailable agent
	// is an error at once, except that a connected agent gets
	// HostKeyGrace to publish its host key, which it does just after
	// connecting.
	Wait bool
	// Progress, if set, is told what Resolve is waiting for, each time
	// that changes.
	Progress func(msg string)
	// PollInterval between API calls while waiting (default 1s).
	PollInterval time.Duration
	// HostKeyGrace (default 10s).
	HostKeyGrace time.Duration
}

// Resolve looks t up through the API and returns its endpoint. Errors
// wrap ErrNotFound (no such workspace or agent, or not the caller's) or
// ErrUnavailable (*UnavailableError: disconnected, never connected, no
// host key yet).
func Resolve(ctx context.Context, api *client.Client, t Target, opts ResolveOptions) (Endpoint, error) {
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.HostKeyGrace <= 0 {
		opts.HostKeyGrace = 10 * time.Second
	}
	start := time.Now()
	var said string
	for {
		ws, err := api.Workspace(ctx, t.Workspace)
		if client.ErrorCode(err) == client.CodeNotFound {
			return Endpoint{}, notFoundError(fmt.Sprintf("workspace %s not found", t.Workspace))
		}
		if err != nil {
			return Endpoint{}, fmt.Errorf("look up workspace %s: %w", t.Workspace, err)
		}
		if ws.Unreachable != "" {
			return Endpoint{}, fmt.Errorf("%w: cannot connect to %s: %s", ErrRefused, t.Workspace, ws.Unreachable)
		}
		ep, err := endpointFor(ws, t, time.Now(), opts.RequireHostKey)
		var ue *UnavailableError
		if err == nil || !errors.As(err, &ue) {
			return ep, err
		}
		if !opts.Wait && (ue.Status != statusNoHostKey || time.Since(start) > opts.HostKeyGrace) {
			return ep, err
		}
		if msg := waitMessage(ue); msg != said && opts.Progress != nil {
			opts.Progress(msg)
			said = msg
		}
		select {
		case <-ctx.Done():
			return ep, fmt.Errorf("%w (gave up waiting: %v)", err, context.Cause(ctx))
		case <-time.After(opts.PollInterval):
		}
	}
}

func waitMessage(ue *UnavailableError) string {
	who := fmt.Sprintf("agent %s of %s", ue.Target.Agent, ue.Target.Workspace)
	switch ue.Status {
	case statusNoHostKey:
		return fmt.Sprintf("Waiting for %s to publish its SSH host key", who)
	case client.AgentDisconnected:
		return fmt.Sprintf("Waiting for %s to reconnect (disconnected)", who)
	}
	return fmt.Sprintf("Waiting for %s to connect", who)
}
