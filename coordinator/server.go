// Package coordinator is the composition root of `devmesh server`: it
// opens the store, loads or creates the server's persistent keys, and
// serves the REST API, the control plane, the DERP relay (TLS) and the
// login page on one port, plus STUN on UDP.
package coordinator

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"tailscale.com/tailcfg"

	"github.com/devmesh/devmesh/coordinator/api"
	"github.com/devmesh/devmesh/coordinator/builds"
	"github.com/devmesh/devmesh/coordinator/control"
	"github.com/devmesh/devmesh/coordinator/metrics"
	"github.com/devmesh/devmesh/coordinator/relay"
	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/internal/certpin"
)

// Config configures a coordinator.
type Config struct {
	// DataDir holds the SQLite database (devmesh.db).
	DataDir string
	// Listen is the TCP address for HTTP, TLS (DERP) and the API.
	Listen string
	// AccessURL is how clients reach this server (default http://<Listen>).
	AccessURL string
	// STUNListen is the UDP address for STUN; "" disables STUN. A second
	// STUN socket listens on the next port (port 0: any free port), so
	// that clients can tell an endpoint-dependent ("hard") NAT.
	STUNListen string
	// TLSCertFile and TLSKeyFile give a real certificate for TLS on the
	// listener; without them a self-signed one is made, persisted, and
	// pinned for clients through the DERP map (and by fingerprint by the
	// CLI and agents when TLSSelfSigned is set).
	TLSCertFile, TLSKeyFile string
	// TLSSelfSigned serves the API over HTTPS with the self-signed
	// certificate. With it or TLSCertFile, the access URL defaults to
	// https://<Listen>. Whenever the access URL is https, plain HTTP on
	// the port serves only the control plane, health checks and relay
	// probes, not the API or the login page.
	TLSSelfSigned   bool
	Logger          *slog.Logger
	Policy          control.Policy
	NodeKeyExpiry   time.Duration
	EphemeralAfter  time.Duration
	OfflineDebounce time.Duration
	// MapBatchDelay is how long a change to a node's peers waits for
	// others before it is sent (control.Config.BatchDelay; default 25ms).
	MapBatchDelay time.Duration
	// DNSDomain is the MagicDNS base domain served to every node
	// (default "devmesh.internal"): agents resolve as WS.OWNER.<domain>,
	// and as WS.<domain> for their owner.
	DNSDomain string

	// TerraformPath is the terraform (or OpenTofu) executable builds run.
	// Default: terraform on PATH, else tofu. New fails if it is missing or
	// older than 1.5, unless DisableProvisioning is set.
	TerraformPath string
	// Provisioners is how many builds run at once (default 2).
	Provisioners int
	// DisableProvisioning runs no terraform: no template pushes, no
	// template workspaces. For servers (and tests) without terraform.
	DisableProvisioning bool
	// DevmeshBinary is the devmesh executable terraform runs as the devmesh
	// provider, that agents on this host run, and that is served at
	// /bin/devmesh-OS-ARCH. Default: this process's own executable.
	DevmeshBinary string
	// BinariesDir holds the devmesh binaries of other platforms, as
	// `make release` builds them (devmesh-OS-ARCH, .exe on Windows),
	// served at /bin/ with their SHA-256 sums. Default: the directory of
	// this process's executable if it holds a SHA256SUMS file (a release
	// directory), else none.
	BinariesDir string
	// ProviderMirrors are filesystem mirrors (`terraform providers mirror
	// DIR`) holding the providers templates may use besides devmesh's;
	// AllowProviderDownload lets terraform download them from their
	// registries instead. By default templates get only devmesh's provider.
	ProviderMirrors       []string
	AllowProviderDownload bool

	// Quotas bound the workspaces and external agents each user may own
	// (zero fields: unlimited; `devmesh server` defaults to 50 and 20).
	Quotas api.Quotas
	// Listener, when set, is served instead of binding Listen (tests,
	// socket activation). The server closes it.
	Listener net.Listener
	// IdleTimeout closes keep-alive connections idle this long (default
	// DefaultIdleTimeout).
	IdleTimeout time.Duration
	// BodyReadTimeout bounds how long reading one request body may take
	// (default DefaultBodyReadTimeout). Requests without a body, such as
	// the control and DERP upgrades and log follows, are not limited.
	BodyReadTimeout time.Duration
	// MetricsListen, when set, is a TCP address serving /metrics,
	// /debug/pprof/ and /debug/vars (and /healthz, /readyz) without
	// authentication: bind it to loopback or a private network. On the
	// main listener those need an admin's token.
	MetricsListen string
}

// Default HTTP timeouts (see Config).
const (
	DefaultIdleTimeout     = 2 * time.Minute
	DefaultBodyReadTimeout = time.Minute
	readHeaderTimeout      = 30 * time.Second
)

// Server is a coordinator. New prepares it, Start (or Run) opens the store,
// binds the sockets and serves, Close stops it.
type Server struct {
	cfg Config
	log *slog.Logger

	// Set by Start, read-only afterwards.
	store     *store.Store
	control   *control.Server
	relay     *relay.Relay
	ln        *splitListener
	accessURL string
	derpMap   *tailcfg.DERPMap
	// fingerprint is the self-signed certificate's SHA-256 ("" with a
	// configured certificate); httpsOnly is set for an https access URL.
	fingerprint string
	httpsOnly   bool

	builds     *builds.Queue // nil when provisioning is disabled
	devmeshBin string        // the binary served at /bin/ ("" if none)

	// stopScheduler stops the workspace scheduler and waits for it (nil
	// when provisioning is disabled).
	stopScheduler func()

	// passwordChecker verifies login-page credentials (set by mountAPI).
	passwordChecker func(ctx context.Context, r *http.Request, username, password string) (store.User, error)

	httpSrv, tlsSrv *http.Server

	// metrics is made by New; metricsSrv serves it on MetricsListen
	// (set by Start). adminOnly guards /metrics and /debug/ on the main
	// listener (set by mountAPI).
	metrics    *metrics.Metrics
	metricsSrv *http.Server
	metricsLn  net.Listener
	adminOnly  func(http.Handler) http.Handler

	// closing is set when Close begins, so /readyz fails before anything
	// stops.
	closing atomic.Bool

	// mu guards started and closed; Start and Close hold it throughout.
	mu              sync.Mutex
	started, closed bool
	closeErr        error

	// failed is closed, once, when serving stops on a fatal error (kept
	// in fatalErr).
	failed   chan struct{}
	failOnce sync.Once
	fatalErr error

	wg sync.WaitGroup
}

// New validates cfg and prepares a coordinator. It opens no file, binds
// no socket and starts no goroutine: Start or Run does.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Logger = slog.New(requestIDHandler{cfg.Logger.Handler()})
	if cfg.DataDir == "" {
		return nil, errors.New("coordinator: DataDir is required")
	}
	if cfg.Listen == "" && cfg.Listener == nil {
		return nil, errors.New("coordinator: Listen is required")
	}
	if cfg.AccessURL != "" {
		if u, err := url.Parse(cfg.AccessURL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("invalid access URL %q: want http(s)://HOST[:PORT]", cfg.AccessURL)
		}
	}
	if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
		return nil, errors.New("coordinator: TLSCertFile and TLSKeyFile go together")
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.BodyReadTimeout <= 0 {
		cfg.BodyReadTimeout = DefaultBodyReadTimeout
	}
	return &Server{cfg: cfg, log: cfg.Logger, failed: make(chan struct{}), metrics: metrics.New()}, nil
}

// Start opens the store, loads or creates the server's keys, binds the
// TCP port and STUN, and starts serving. It returns once connections are
// accepted; a later fatal error (the port failing) ends Run, or shows in
// Failed. On error everything started is closed again.
func (s *Server) Start(ctx context.Context) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return errors.New("coordinator: already started or closed")
	}
	s.started = true
	defer func() {
		if err != nil {
			s.closed = true
			s.closeErr = s.closeLocked()
		}
	}()
	cfg := s.cfg
	if s.store, err = store.OpenSQLite(ctx, filepath.Join(cfg.DataDir, "devmesh.db")); err != nil {
		return err
	}
	s.store.SetQueryObserver(s.metrics.Store.ObserveQuery)
	keys, err := loadKeys(ctx, s.store)
	if err != nil {
		return err
	}
	tcp := cfg.Listener
	if tcp == nil {
		if tcp, err = net.Listen("tcp", cfg.Listen); err != nil {
			return fmt.Errorf("listen %s: %w", cfg.Listen, err)
		}
	}
	s.ln = newSplitListener(tcp, s.log)
	s.accessURL = cfg.AccessURL
	if s.accessURL == "" {
		scheme := "http"
		if cfg.TLSSelfSigned || cfg.TLSCertFile != "" {
			scheme = "https"
		}
		s.accessURL = scheme + "://" + tcp.Addr().String()
	}
	u, err := url.Parse(s.accessURL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("invalid access URL %q", s.accessURL)
	}
	cert, pin, err := s.loadCert(ctx, u.Hostname())
	if err != nil {
		return err
	}
	if cfg.TLSCertFile == "" {
		s.fingerprint = certpin.Fingerprint(cert.Certificate[0])
	}
	s.httpsOnly = u.Scheme == "https"
	s.relay, err = relay.New(relay.Options{
		PrivateKey: keys.derp,
		Admit:      s.admitRelayClient,
		Logger:     s.log.With("component", "relay"),
		STUNAddr:   cfg.STUNListen,
		STUNAddr2:  nextPort(cfg.STUNListen),
	})
	if err != nil {
		return err
	}
	if err := s.relay.Start(ctx); err != nil {
		return err
	}
	s.derpMap = buildDERPMap(u, tcp.Addr().(*net.TCPAddr).Port, s.relay.STUNPort(), s.relay.STUNPort2(), pin)
	s.control, err = control.New(control.Config{
		Store:           s.store,
		Logger:          s.log.With("component", "control"),
		MachineKey:      keys.noise,
		BaseURL:         s.accessURL,
		DERPMap:         s.derpMap,
		Policy:          cfg.Policy,
		NodeKeyExpiry:   cfg.NodeKeyExpiry,
		EphemeralAfter:  cfg.EphemeralAfter,
		OfflineDebounce: cfg.OfflineDebounce,
		BatchDelay:      cfg.MapBatchDelay,
		Domain:          cfg.DNSDomain,
		CheckPassword:   s.checkPassword,
		Metrics:         s.metrics.Control,
	})
	if err != nil {
		return err
	}
	if err := s.control.Load(ctx); err != nil {
		return err
	}
	if err := s.startProvisioning(ctx); err != nil {
		return err
	}
	handler, err := s.routes()
	if err != nil {
		return err
	}
	s.registerMetrics()
	if err := s.listenMetrics(); err != nil {
		return err
	}
	s.serve(s.newHTTPServers(handler, cert))
	return nil
}

// newHTTPServers returns the plain-HTTP and the TLS server, both with
// the idle and header timeouts; limitBodyRead bounds request bodies.
func (s *Server) newHTTPServers(handler http.Handler, cert tls.Certificate) (plain, tlsSrv *http.Server) {
	handler = limitBodyRead(handler, s.cfg.BodyReadTimeout)
	plainHandler := handler
	if s.httpsOnly {
		plainHandler = httpsOnly(handler, s.accessURL)
	}
	handler, plainHandler = s.observe(handler), s.observe(plainHandler)
	errLog := slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	s.httpSrv = &http.Server{Handler: plainHandler, ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: s.cfg.IdleTimeout, ErrorLog: errLog}
	s.tlsSrv = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		ErrorLog:          errLog,
		// DERP hijacks the connection, which needs HTTP/1.1.
		TLSConfig:    &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}},
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	return s.httpSrv, s.tlsSrv
}

// serve starts the accept loop and both HTTP servers.
func (s *Server) serve(plain, tlsSrv *http.Server) {
	s.wg.Add(3)
	go func() {
		defer s.wg.Done()
		if err := s.ln.serve(); err != nil {
			s.fail(err)
		}
	}()
	go func() {
		defer s.wg.Done()
		plain.Serve(s.ln.plain)
	}()
	go func() {
		defer s.wg.Done()
		tlsSrv.Serve(tls.NewListener(s.ln.tls, tlsSrv.TLSConfig))
	}()
}

// fail records the first fatal serving error and wakes Run.
func (s *Server) fail(err error) {
	s.failOnce.Do(func() {
		s.log.Error("coordinator stopped serving", "err", err)
		s.fatalErr = err
		close(s.failed)
	})
}

// Failed is closed when serving has stopped on a fatal error; Run then
// returns it.
func (s *Server) Failed() <-chan struct{} { return s.failed }

// Run starts the server unless Start already did, serves until ctx is
// done or serving fails, then closes the server. It returns the fatal
// error (for example the port failing for good), or nil when ctx ended
// it and closing went well.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if !started {
		if err := s.Start(ctx); err != nil {
			return err
		}
	}
	var fatal error
	select {
	case <-ctx.Done():
	case <-s.failed:
		fatal = s.fatalErr
	}
	return errors.Join(fatal, s.Close())
}

// Fingerprint returns the SHA-256 fingerprint of the self-signed
// certificate served for TLS, which clients pin, or "" when a configured
// certificate is served.
func (s *Server) Fingerprint() string { return s.fingerprint }

// agentFingerprint is the pin agents need: the self-signed certificate's
// fingerprint when the access URL is https, else "".
func (s *Server) agentFingerprint() string {
	if !s.httpsOnly {
		return ""
	}
	return s.fingerprint
}

// URL returns the access URL.
func (s *Server) URL() string { return s.accessURL }

// Addr returns the bound TCP address.
func (s *Server) Addr() net.Addr { return s.ln.ln.Addr() }

// Store returns the server's store (for tests and tools).
func (s *Server) Store() *store.Store { return s.store }

// Control returns the control plane.
func (s *Server) Control() *control.Server { return s.control }

// DERPMap returns the DERP map sent to nodes.
func (s *Server) DERPMap() *tailcfg.DERPMap { return s.derpMap }

// Close stops serving and closes everything Start opened, waiting for
// the goroutines it started. It is idempotent and returns what went
// wrong while closing.
func (s *Server) Close() error {
	s.closing.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.closeErr = s.closeLocked()
	}
	return s.closeErr
}

// closeLocked closes what Start opened, in reverse order. s.mu is held.
func (s *Server) closeLocked() error {
	var errs []error
	if s.ln != nil {
		s.ln.Close()
	} else if s.cfg.Listener != nil {
		s.cfg.Listener.Close()
	}
	if s.metricsSrv == nil && s.metricsLn != nil {
		s.metricsLn.Close()
	}
	if s.control != nil {
		s.control.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range []*http.Server{s.httpSrv, s.tlsSrv, s.metricsSrv} {
		if srv != nil {
			if err := srv.Shutdown(ctx); err != nil {
				srv.Close()
			}
		}
	}
	s.wg.Wait()
	if s.stopScheduler != nil {
		s.stopScheduler()
	}
	if s.builds != nil {
		s.builds.Close()
	}
	if s.relay != nil {
		errs = append(errs, s.relay.Close())
	}
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	return errors.Join(errs...)
}

// nextPort returns addr with the next port number ("" and port 0 stay as
// they are).
func nextPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	p, err := strconv.Atoi(port)
	if err != nil || p == 0 {
		return addr
	}
	return net.JoinHostPort(host, strconv.Itoa(p+1))
}

// buildDERPMap describes the embedded relay as region 900. The node is
// reached at the access URL's host; a self-signed certificate is pinned
// by hash.
//
// A second STUN port (stunPort2 > 0) is region 901, a STUN-only node of
// the same host: netcheck probes regions at once but stops probing a
// region at its first reply, so only a second region makes every client
// see its mapping for two destinations and tell a hard NAT. Its score
// keeps it from ever being chosen as a node's home relay.
func buildDERPMap(u *url.URL, listenPort, stunPort, stunPort2 int, pin string) *tailcfg.DERPMap {
	host := u.Hostname()
	port := listenPort
	if p, err := strconv.Atoi(u.Port()); err == nil && u.Port() != "" {
		port = p
	}
	n := &tailcfg.DERPNode{
		Name:     "900a",
		RegionID: 900,
		HostName: host,
		DERPPort: port,
		STUNPort: stunPort,
		CertName: pin,
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip.To4() != nil {
			n.IPv4, n.IPv6 = host, "none"
		} else {
			n.IPv4, n.IPv6 = "none", host
		}
	}
	dm := &tailcfg.DERPMap{
		Regions: map[int]*tailcfg.DERPRegion{
			900: {RegionID: 900, RegionCode: "devmesh", RegionName: "devmesh embedded relay", Nodes: []*tailcfg.DERPNode{n}},
		},
		OmitDefaultRegions: true,
	}
	if stunPort > 0 && stunPort2 > 0 {
		n2 := *n
		n2.Name, n2.RegionID, n2.STUNPort, n2.STUNOnly = "901a", 901, stunPort2, true
		dm.Regions[901] = &tailcfg.DERPRegion{RegionID: 901, RegionCode: "devmesh-stun2", RegionName: "devmesh second STUN port", Nodes: []*tailcfg.DERPNode{&n2}}
		dm.HomeParams = &tailcfg.DERPHomeParams{RegionScore: map[int]float64{901: 1000}}
	}
	return dm
}
