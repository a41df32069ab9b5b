package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/node"
	"github.com/devmesh/devmesh/tunnel"
)

// tunnelFlags are the flags of every command that reaches a workspace
// over an in-process tailnet node.
type tunnelFlags struct {
	verbose bool
	debug   bool
	wait    bool
}

func (f *tunnelFlags) add(cmd *cobra.Command, wait bool) {
	cmd.Flags().BoolVarP(&f.verbose, "verbose", "v", false, "show progress on stderr as it happens (by default only when slow)")
	cmd.Flags().BoolVar(&f.debug, "debug", false, "log the tailnet node's internals to stderr")
	if wait {
		cmd.Flags().BoolVar(&f.wait, "wait", false, "wait for the workspace agent to connect instead of failing at once")
	}
}

// logger returns tailscale's logger: stderr with --debug, else discard.
func (f *tunnelFlags) logger(stderr io.Writer) *slog.Logger {
	if !f.debug {
		return nil
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tunnelConn is a resolved workspace agent and a node to reach it.
type tunnelConn struct {
	api  *client.Client
	ep   tunnel.Endpoint
	node *node.Node
	prog *progress
}

// openTunnel resolves target and joins the tailnet, concurrently: both
// cost round trips to the coordinator. On error nothing is left running.
func openTunnel(ctx context.Context, stderr io.Writer, target tunnel.Target, f tunnelFlags, requireHostKey bool) (*tunnelConn, error) {
	api, _, err := newAPIClient()
	if err != nil {
		return nil, err
	}
	prog := newProgress(stderr, f.verbose)
	type joinResult struct {
		n   *node.Node
		err error
	}
	joinCtx, cancelJoin := context.WithCancel(ctx)
	defer cancelJoin()
	joined := make(chan joinResult, 1)
	go func() {
		n, err := tunnel.Join(joinCtx, api, tunnel.JoinOptions{Logger: f.logger(stderr)})
		joined <- joinResult{n, err}
	}()
	prog.step(fmt.Sprintf("Looking up %s", target))
	ep, err := tunnel.Resolve(ctx, api, target, tunnel.ResolveOptions{
		RequireHostKey: requireHostKey,
		Wait:           f.wait,
		Progress:       prog.always,
	})
	if err != nil {
		cancelJoin()
		if r := <-joined; r.err == nil {
			tunnel.Leave(r.n)
		}
		prog.stop()
		return nil, err
	}
	prog.step("Joining the tailnet")
	r := <-joined
	if r.err != nil {
		prog.stop()
		return nil, r.err
	}
	prog.step(fmt.Sprintf("Connecting to %s (%s)", ep.Target, ep.Addr))
	return &tunnelConn{api: api, ep: ep, node: r.n, prog: prog}, nil
}

// connectTimeout bounds connecting to an agent the API says is
// connected.
const connectTimeout = 30 * time.Second

// connectError explains a failed connection to the agent.
func connectError(tc *tunnelConn, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, node.ErrNoPeer) {
		return fmt.Errorf("could not reach %s over the tailnet within %v (the coordinator says it is connected; "+
			"check `devmesh ping %s` and `devmesh netcheck`): %w", tc.ep.Target, connectTimeout, tc.ep.Target, err)
	}
	return err
}

// Close leaves the tailnet.
func (tc *tunnelConn) Close() {
	tc.prog.stop()
	tunnel.Leave(tc.node)
}

// slowAfter is how long a command runs before its progress is shown
// without -v.
const slowAfter = time.Second

// progress tells the user what a command is doing, on stderr: at once
// with -v, otherwise only once the command has been running for
// slowAfter, so that fast commands stay quiet.
type progress struct {
	w       io.Writer
	verbose bool
	start   time.Time
	timer   *time.Timer

	mu      sync.Mutex
	current string // guarded by mu: the step in progress
	printed bool   // guarded by mu: current has been printed
	slow    bool   // guarded by mu: slowAfter has passed
	stopped bool   // guarded by mu
}

func newProgress(w io.Writer, verbose bool) *progress {
	return newProgressAfter(w, verbose, slowAfter)
}

// newProgressAfter is newProgress with another threshold (for tests).
func newProgressAfter(w io.Writer, verbose bool, after time.Duration) *progress {
	p := &progress{w: w, verbose: verbose, start: time.Now()}
	if !verbose {
		p.timer = time.AfterFunc(after, p.becameSlow)
	}
	return p
}

func (p *progress) becameSlow() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.slow = true
	if p.current != "" && !p.printed {
		p.printLocked(p.current)
		p.printed = true
	}
}

// step starts a new step.
func (p *progress) step(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.current, p.printed = msg, false
	if (p.verbose || p.slow) && !p.stopped {
		p.printLocked(msg)
		p.printed = true
	}
}

// always prints msg now and makes it the current step (waiting, which is
// slow by nature).
func (p *progress) always(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopped {
		p.printLocked(msg)
		p.current, p.printed = msg, true
	}
}

func (p *progress) printLocked(msg string) {
	if p.verbose {
		fmt.Fprintf(p.w, "[%5.2fs] %s...\n", time.Since(p.start).Seconds(), msg)
		return
	}
	fmt.Fprintf(p.w, "%s...\n", msg)
}

// stop ends progress output; later steps print nothing.
func (p *progress) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.stopped = true
	if p.timer != nil {
		p.timer.Stop()
	}
}

// done ends the setup steps: with -v it says how long they took.
func (p *progress) done(what string) {
	p.mu.Lock()
	verbose := p.verbose && !p.stopped
	p.mu.Unlock()
	if verbose {
		fmt.Fprintf(p.w, "[%5.2fs] %s\n", time.Since(p.start).Seconds(), what)
	}
	p.stop()
}

// stdinFile returns cmd's stdin as a file when it is one (a terminal, a
// pipe), for terminal checks.
func stdinFile(cmd *cobra.Command) (*os.File, bool) {
	f, ok := cmd.InOrStdin().(*os.File)
	return f, ok
}
