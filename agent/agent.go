// Package agent is the workspace agent (`devmesh agent`): it fetches its
// manifest from the coordinator with its agent token, joins the tailnet
// as the workspace's node, serves SSH (agent/sshd) and the speedtest on
// its tailnet address, runs the startup script with its output streamed
// to the coordinator, and reports its lifecycle and stats. It keeps
// running while the coordinator is away. It talks to the coordinator only
// through the API client, never to the store.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/devmesh/devmesh/agent/sshd"
	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/internal/buildinfo"
	"github.com/devmesh/devmesh/node"
)

// Tailnet ports the agent serves.
const (
	SSHPort       = 22
	SpeedtestPort = 4444
)

// hostKeyFile is the SSH host key's file name in the state directory.
const hostKeyFile = "ssh_host_ed25519_key"

// Options configures an agent.
type Options struct {
	// URL is the coordinator's URL. Required.
	URL string
	// Token is the agent token. Required. It is never passed to the
	// startup script or SSH sessions.
	Token string
	// StateDir keeps the SSH host key and the tailnet node's state, so a
	// restart keeps the host key, the node key and the address. Required.
	StateDir string
	// Logger receives the agent's logs; nil discards them.
	Logger *slog.Logger
	// Version is reported to the coordinator (default: this binary's).
	Version string
	// StatsInterval is how often stats are reported (default 15s).
	StatsInterval time.Duration
	// HTTPClient makes the API calls (default: 30s timeout).
	HTTPClient *http.Client
	// Fingerprint pins the coordinator's TLS certificate by its SHA-256
	// (DEVMESH_FINGERPRINT), for a coordinator serving its self-signed
	// certificate; it applies to the API and the tailnet node's control
	// connection.
	Fingerprint string
	// TokenRejectedGrace is how long, from Run's start, the agent keeps
	// retrying while the coordinator rejects a token it has never
	// accepted (default DefaultTokenRejectedGrace; negative: no grace,
	// give up at the first rejection). A template's agent starts during
	// terraform apply, and its token is registered only when the build
	// has finished. Once the token has been accepted (a record of it is
	// kept in StateDir, so this holds across restarts), a rejection (the
	// workspace was stopped or deleted) ends Run at once.
	TokenRejectedGrace time.Duration
	// Shell runs SSH sessions (default: the user's login shell; on
	// Windows, PowerShell, else cmd.exe).
	Shell string
}

// DefaultTokenRejectedGrace is the default Options.TokenRejectedGrace.
const DefaultTokenRejectedGrace = 10 * time.Minute

// Agent is a workspace agent. Create it with New and run it with Run.
type Agent struct {
	opts Options // defaults filled in
	log  *slog.Logger
	api  *client.Client

	// stop ends Run with a cause, and started is when Run began; both
	// are set by Run before anything else runs.
	stop    context.CancelCauseFunc
	started time.Time
	// accepted is set once the coordinator has accepted the token (in
	// this run or, with this state directory, an earlier one); from then
	// on a rejection stops the agent at once.
	accepted atomic.Bool

	// forwards counts the connections forwarded straight over the
	// tailnet (not through SSH); changed is signalled (never blocking)
	// when they or the SSH server's connections change, so that stats
	// are reported at once.
	forwards atomic.Int64
	changed  chan struct{}
}

// New validates o; it starts nothing.
func New(o Options) (*Agent, error) {
	switch {
	case o.URL == "":
		return nil, errors.New("agent: the coordinator URL is required")
	case o.Token == "":
		return nil, errors.New("agent: the agent token is required")
	case o.StateDir == "":
		return nil, errors.New("agent: a state directory is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Version == "" {
		o.Version = buildinfo.Version()
	}
	if o.StatsInterval <= 0 {
		o.StatsInterval = 15 * time.Second
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if o.TokenRejectedGrace == 0 {
		o.TokenRejectedGrace = DefaultTokenRejectedGrace
	}
	api, err := client.New(o.URL, o.Token, client.WithHTTPClient(o.HTTPClient),
		client.WithUserAgent("devmesh-agent/"+o.Version), client.WithFingerprint(o.Fingerprint))
	if err != nil {
		return nil, err
	}
	return &Agent{opts: o, log: o.Logger, api: api, changed: make(chan struct{}, 1)}, nil
}

// Run runs the agent until ctx ends (it then returns nil) or the
// coordinator rejects the agent token (ErrTokenRejected): at once if the
// token was accepted before, else once Options.TokenRejectedGrace has
// passed. While the coordinator is unreachable it retries with backoff
// and keeps serving.
func (a *Agent) Run(ctx context.Context) error {
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	a.stop, a.started = stop, time.Now()
	a.accepted.Store(a.acceptedBefore())
	// A poll cancelled while dialling leaves its new connection idle.
	defer a.opts.HTTPClient.CloseIdleConnections()
	err := a.run(ctx)
	if cause := context.Cause(ctx); errors.Is(cause, ErrTokenRejected) {
		return cause
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (a *Agent) run(ctx context.Context) error {
	m, err := retryValue(ctx, a, "fetch the manifest", a.api.AgentManifest)
	if err != nil {
		return err
	}
	log := a.log.With("workspace", m.WorkspaceName, "agent", m.AgentName)
	log.Info("fetched the manifest", "owner", m.Owner)
	signer, err := sshd.LoadOrCreateHostKey(filepath.Join(a.opts.StateDir, hostKeyFile))
	if err != nil {
		return fmt.Errorf("SSH host key: %w", err)
	}
	start := time.Now()
	n, err := a.joinTailnet(ctx, m)
	if err != nil {
		return err
	}
	defer n.Close()
	v4, _ := n.Addrs()
	log.Info("joined the tailnet", "address", v4, "took", time.Since(start).Round(time.Millisecond))
	return a.serve(ctx, m, n, signer)
}

// serve runs everything that needs the tailnet until ctx ends.
func (a *Agent) serve(ctx context.Context, m client.AgentManifest, n *node.Node, signer gossh.Signer) error {
	authorize := ownerOnly(n.LocalClient(), m.Owner)
	srv, err := sshd.New(sshd.Options{
		HostSigner: signer,
		Authorize:  authorize,
		Logger:     a.log.With("component", "sshd"),
		Env:        sessionEnv(m),
		Dir:        m.Dir,
		Shell:      a.opts.Shell,
		OnChange:   a.statsChanged,
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	sshLn, err := n.Listen("tcp", fmt.Sprintf(":%d", SSHPort))
	if err != nil {
		return fmt.Errorf("listen on tailnet port %d: %w", SSHPort, err)
	}
	stLn, err := n.Listen("tcp", fmt.Sprintf(":%d", SpeedtestPort))
	if err != nil {
		sshLn.Close()
		return fmt.Errorf("listen on tailnet port %d: %w", SpeedtestPort, err)
	}
	logs := newLogSender(a)
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(sshLn) })
	wg.Go(func() { serveSpeedtest(ctx, stLn, authorize, a.log.With("component", "speedtest")) })
	wg.Go(func() { a.serveForwards(ctx, n, authorize) })
	wg.Go(func() { logs.run(ctx) })
	wg.Go(func() { a.publishInfo(ctx, signer) })
	wg.Go(func() { a.runStartup(ctx, m, logs) })
	wg.Go(func() { a.reportStats(ctx, srv) })
	wg.Go(func() { a.reportPorts(ctx, scopeOf(m)) })
	wg.Go(func() { a.serveTerminal(ctx, m, srv) })
	<-ctx.Done()
	a.log.Info("agent stopping", "cause", context.Cause(ctx))
	srv.Close()
	wg.Wait()
	if !errors.Is(context.Cause(ctx), ErrTokenRejected) {
		a.reportOff()
	}
	return nil
}

// publishInfo tells the coordinator the agent's version, platform and SSH
// host key, which clients verify the server against.
func (a *Agent) publishInfo(ctx context.Context, signer gossh.Signer) {
	info := client.AgentInfo{
		Version:    a.opts.Version,
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
		SSHHostKey: strings.TrimSpace(string(gossh.MarshalAuthorizedKey(signer.PublicKey()))),
	}
	err := retry(ctx, a, "publish agent info", func(ctx context.Context) error { return a.api.PostAgentInfo(ctx, info) })
	if err != nil && ctx.Err() == nil {
		a.log.Error("the coordinator refused the agent info", "err", err)
	}
}

// statsDebounce gathers the connection changes of a moment (a client
// opening a session and a forward) into one report.
const statsDebounce = 500 * time.Millisecond

// statsChanged asks for a stats report now; it never blocks.
func (a *Agent) statsChanged() {
	select {
	case a.changed <- struct{}{}:
	default:
	}
}

// countForward counts a connection forwarded over the tailnet opening
// (+1) or closing (-1).
func (a *Agent) countForward(delta int64) {
	a.forwards.Add(delta)
	a.statsChanged()
}

// reportStats reports the open connections and counters every
// StatsInterval, and soon after a connection, session or forward opens
// or closes, so that the coordinator's count (and the workspace's
// activity, which keeps its autostop away) is current. A failed report is
// not retried: the next one supersedes it.
func (a *Agent) reportStats(ctx context.Context, srv *sshd.Server) {
	t := time.NewTicker(a.opts.StatsInterval)
	defer t.Stop()
	for {
		st := srv.Stats()
		err := a.api.PostAgentStats(ctx, client.AgentStats{Connections: st.Connections, Sessions: st.Sessions,
			PortForwards: a.forwards.Load(), RxBytes: st.RxBytes, TxBytes: st.TxBytes})
		if err != nil && ctx.Err() == nil {
			a.checkRejected(err)
			a.log.Debug("report stats", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.changed:
			select {
			case <-ctx.Done():
				return
			case <-time.After(statsDebounce):
			}
		}
	}
}

// reportOff tells the coordinator, briefly and once, that the agent is
// stopping.
func (a *Agent) reportOff() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := a.api.PostAgentLifecycle(ctx, client.LifecycleOff); err != nil {
		a.log.Debug("report lifecycle off", "err", err)
	}
}
