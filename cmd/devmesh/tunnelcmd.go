package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/internal/cliconfig"
	"github.com/devmesh/devmesh/node"
	"github.com/devmesh/devmesh/tunnel"
	"github.com/devmesh/devmesh/tunnel/daemon"
)

// tunnelFlags are the flags of every command that reaches a workspace
// over the tailnet: through the daemon when one runs, else over an
// in-process node.
type tunnelFlags struct {
	verbose  bool
	debug    bool
	wait     bool
	noDaemon bool
	socket   string
}

func (f *tunnelFlags) add(cmd *cobra.Command, wait bool) {
	cmd.Flags().BoolVarP(&f.verbose, "verbose", "v", false, "show progress on stderr as it happens (by default only when slow)")
	cmd.Flags().BoolVar(&f.debug, "debug", false, "log the tailnet node's internals to stderr")
	cmd.Flags().BoolVar(&f.noDaemon, "no-daemon", false, "start an in-process tailnet node even when the devmesh daemon runs")
	cmd.Flags().StringVar(&f.socket, "daemon-socket", "", "the daemon's socket (default as for devmesh daemon)")
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

// tunnelConn is a resolved workspace agent and a way to reach it: the
// daemon, or a node of the command's own.
type tunnelConn struct {
	api     *client.Client
	ep      tunnel.Endpoint
	tailnet tunnel.Tailnet // daemon or node
	node    *node.Node     // nil when through the daemon
	daemon  *daemon.Client // nil without the daemon
	prog    *progress
}

// openTunnel resolves target and finds the way to it: the daemon when
// one runs for this login, else a node joined concurrently with the
// lookup (both cost round trips to the coordinator). On error nothing
// is left running.
func openTunnel(ctx context.Context, stderr io.Writer, target tunnel.Target, f tunnelFlags, requireHostKey bool) (*tunnelConn, error) {
	api, creds, err := newAPIClient()
	if err != nil {
		return nil, err
	}
	prog := newProgress(stderr, f.verbose)
	dc, why := daemonFor(ctx, creds, f)
	if dc != nil {
		prog.note(fmt.Sprintf("Using the devmesh daemon (%s)", dc.SocketPath()))
		prog.step(fmt.Sprintf("Looking up %s", target))
		ep, err := tunnel.Resolve(ctx, api, target, tunnel.ResolveOptions{RequireHostKey: requireHostKey, Wait: f.wait, Progress: prog.always})
		if err != nil {
			dc.Close()
			prog.stop()
			return nil, err
		}
		prog.step(fmt.Sprintf("Connecting to %s (%s)", ep.Target, ep.Addr))
		return &tunnelConn{api: api, ep: ep, tailnet: dc, daemon: dc, prog: prog}, nil
	}
	prog.note(fmt.Sprintf("Not using the daemon (%s): starting an in-process node", why))
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
	return &tunnelConn{api: api, ep: ep, tailnet: r.n, node: r.n, prog: prog}, nil
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

// Close leaves the tailnet (or lets go of the daemon).
func (tc *tunnelConn) Close() {
	tc.prog.stop()
	if tc.daemon != nil {
		tc.daemon.Close()
		return
	}
	tunnel.Leave(tc.node)
}

// netcheck checks this network with the relay map of the tailnet; nil if
// it fails.
func (tc *tunnelConn) netcheck(ctx context.Context, log *slog.Logger) *node.NetReport {
	if tc.daemon != nil {
		r, err := tc.daemon.Netcheck(ctx)
		if err != nil {
			return nil
		}
		return r
	}
	return netcheckFrom(ctx, tc.node, log)
}

// daemonStatusTimeout bounds asking the daemon for its status: it is
// local, so a slow answer means something is wrong with it.
const daemonStatusTimeout = 2 * time.Second

// daemonFor returns a client of the running daemon if it serves this
// coordinator and login; otherwise nil and why not.
func daemonFor(ctx context.Context, creds cliconfig.Credentials, f tunnelFlags) (*daemon.Client, string) {
	if f.noDaemon {
		return nil, "--no-daemon"
	}
	_, socket, err := daemonPaths("unused", f.socket)
	if err != nil {
		return nil, err.Error()
	}
	c := daemon.NewClient(socket)
	ctx, cancel := context.WithTimeout(ctx, daemonStatusTimeout)
	defer cancel()
	st, err := c.Status(ctx)
	why := ""
	switch {
	case err != nil:
		why = err.Error()
	case strings.TrimRight(st.ControlURL, "/") != strings.TrimRight(creds.URL, "/"):
		why = fmt.Sprintf("it serves %s, you are logged in to %s", st.ControlURL, creds.URL)
	case creds.Username != "" && st.User != creds.Username:
		why = fmt.Sprintf("it is %s's node, you are logged in as %s", st.User, creds.Username)
	case st.State != "Running" && st.State != "Starting":
		// Starting: it has its netmap and can reach peers, but has not
		// finished its first netcheck yet (see node.Start).
		why = fmt.Sprintf("its node is %s, not Running", st.State)
	}
	if why != "" {
		c.Close()
		return nil, why
	}
	return c, ""
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

// note prints msg with -v only (which path a command takes).
func (p *progress) note(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.verbose && !p.stopped {
		fmt.Fprintf(p.w, "[%5.2fs] %s\n", time.Since(p.start).Seconds(), msg)
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
