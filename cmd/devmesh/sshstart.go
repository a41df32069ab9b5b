package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/tunnel"
)

// workspaceRunState says whether a template workspace is up, from its
// latest build.
type workspaceRunState int

const (
	wsRunning  workspaceRunState = iota // started, or external, or failed: nothing to do here
	wsStarting                          // a start build is queued or running
	wsStopping                          // a stop build is queued or running
	wsStopped                           // the latest build is a stop that succeeded
)

func runStateOf(ws client.Workspace) (workspaceRunState, *client.Build) {
	b := ws.LatestBuild
	if b == nil {
		return wsRunning, nil
	}
	busy := b.Status == client.BuildPending || b.Status == client.BuildRunning
	switch {
	case b.Transition == client.TransitionStart && busy:
		return wsStarting, b
	case b.Transition == client.TransitionStop && busy:
		return wsStopping, b
	case b.Transition == client.TransitionStop && b.Status == client.BuildSucceeded:
		return wsStopped, b
	}
	return wsRunning, b
}

// startForSSH makes sure the workspace of target is started before `devmesh
// ssh` connects: a start under way is waited for; a stopped workspace is
// started with --start, else after asking on a terminal, else refused
// with a message naming the command. It then waits for the build and for
// the agents. Progress goes to stderr. It reports whether it waited (the
// caller then lets the lookup wait for the agent too).
func startForSSH(cmd *cobra.Command, target tunnel.Target, start, ask bool) (bool, error) {
	c, _, err := newAPIClient()
	if err != nil {
		return false, err
	}
	ctx := cmd.Context()
	name := target.Workspace
	ws, err := c.Workspace(ctx, name)
	if err != nil {
		return false, err
	}
	state, b := runStateOf(ws)
	if state == wsRunning {
		return false, nil
	}
	stderr := cmd.ErrOrStderr()
	bw := newBuildWaiter(cmd, c, name)
	bw.out = stderr
	if state == wsStopping {
		fmt.Fprintf(stderr, "Workspace %s is stopping (build #%d); waiting for that first.\n", name, b.Number)
		if err := bw.wait(ctx, *b); err != nil {
			return false, err
		}
		state = wsStopped
	}
	if state == wsStopped {
		if err := askToStart(cmd, target, start, ask); err != nil {
			return false, err
		}
		nb, err := c.CreateBuild(ctx, name, client.TransitionStart)
		if err != nil {
			return false, err
		}
		if err := bw.queued(ctx, nb, false); err != nil {
			return false, err
		}
	} else {
		fmt.Fprintf(stderr, "Workspace %s is starting (build #%d); waiting for it.\n", name, b.Number)
		if err := bw.wait(ctx, *b); err != nil {
			return false, err
		}
	}
	return true, waitAgentsReady(ctx, stderr, stderr, c, name, defaultAgentTimeout)
}

// askToStart decides whether a stopped workspace may be started: --start
// says yes; on a terminal (ask) the user is asked; otherwise the answer
// is an error that says how.
func askToStart(cmd *cobra.Command, target tunnel.Target, start, ask bool) error {
	name := target.Workspace
	refused := fmt.Errorf("workspace %s is stopped: start it with `devmesh start %s`, or connect with `devmesh ssh --start %s`", name, name, name)
	switch {
	case start:
		return nil
	case !ask || !stdinIsTerminal(cmd) || !isTerminal(cmd.ErrOrStderr()):
		return refused
	}
	ok, err := askYesNo(cmd.InOrStdin(), cmd.ErrOrStderr(), fmt.Sprintf("Workspace %s is stopped. Start it? [y/N] ", name))
	if err != nil || !ok {
		return refused
	}
	return nil
}

// openTunnelStarting is openTunnel for `devmesh ssh`: with --start the
// workspace is started first if it must be; without, the lookup is tried
// first (no extra round trip when the workspace runs) and, if it fails
// for a workspace that is stopped or starting, startForSSH takes over and
// the lookup is tried again.
func openTunnelStarting(ctx context.Context, cmd *cobra.Command, target tunnel.Target, o sshOptions, ask bool) (*tunnelConn, error) {
	stderr := cmd.ErrOrStderr()
	if o.start {
		waited, err := startForSSH(cmd, target, true, ask)
		if err != nil {
			return nil, err
		}
		o.wait = o.wait || waited
		return openTunnel(ctx, stderr, target, o.tunnelFlags, true)
	}
	tc, err := openTunnel(ctx, stderr, target, o.tunnelFlags, true)
	if err == nil {
		return tc, nil
	}
	waited, serr := startForSSH(cmd, target, false, ask)
	if serr != nil {
		if client.ErrorCode(serr) != "" {
			return nil, err // the workspace lookup failed too: the first error says it
		}
		return nil, serr
	}
	if !waited {
		return nil, err
	}
	o.wait = true
	return openTunnel(ctx, stderr, target, o.tunnelFlags, true)
}
