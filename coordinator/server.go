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
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"tailscale.com/tailcfg"
	"tailscale.com/types/key"

	"github.com/devmesh/devmesh/coordinator/builds"
	"github.com/devmesh/devmesh/coordinator/control"
	"github.com/devmesh/devmesh/coordinator/relay"
	"github.com/devmesh/devmesh/coordinator/store"
)

// Config configures a coordinator.
type Config struct {
	// DataDir holds the SQLite database (devmesh.db).
	DataDir string
	// Listen is the TCP address for HTTP, TLS (DERP) and the API.
	Listen string
	// AccessURL is how clients reach this server (default http://<Listen>).
	AccessURL string
	// STUNListen is the UDP address for STUN; "" disables STUN.
	STUNListen string
	// TLSCertFile and TLSKeyFile give a real certificate for TLS on the
	// listener; without them a self-signed one is made, persisted, and
	// pinned for clients through the DERP map.
	TLSCertFile, TLSKeyFile string
	Logger                  *slog.Logger
	Policy                  control.Policy
	NodeKeyExpiry           time.Duration
	EphemeralAfter          time.Duration
	OfflineDebounce         time.Duration

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
}

// Server is a running coordinator.
type Server struct {
	cfg       Config
	log       *slog.Logger
	store     *store.Store
	control   *control.Server
	relay     *relay.Relay
	ln        *splitListener
	accessURL string
	derpMap   *tailcfg.DERPMap

	builds     *builds.Queue // nil when provisioning is disabled
	devmeshBin string        // the binary served at /bin/ ("" if none)

	// passwordChecker verifies login-page credentials (set by mountAPI).
	passwordChecker func(ctx context.Context, r *http.Request, username, password string) (store.User, error)

	httpSrv, tlsSrv *http.Server
	closeOnce       sync.Once
	wg              sync.WaitGroup
}

// New opens the store, binds the listeners and prepares every component.
// Call Serve to start serving.
func New(ctx context.Context, cfg Config) (_ *Server, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DataDir == "" {
		return nil, errors.New("coordinator: DataDir is required")
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if s.store, err = store.OpenSQLite(ctx, filepath.Join(cfg.DataDir, "devmesh.db")); err != nil {
		return nil, err
	}
	keys, err := loadKeys(ctx, s.store)
	if err != nil {
		return nil, err
	}
	tcp, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	s.ln = newSplitListener(tcp)
	s.accessURL = cfg.AccessURL
	if s.accessURL == "" {
		s.accessURL = "http://" + tcp.Addr().String()
	}
	u, err := url.Parse(s.accessURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("invalid access URL %q", s.accessURL)
	}
	cert, pin, err := s.loadCert(ctx, u.Hostname())
	if err != nil {
		return nil, err
	}
	s.relay, err = relay.New(relay.Options{
		PrivateKey: keys.derp,
		Admit:      func(k key.NodePublic) bool { return s.control.AdmitNodeKey(k) },
		Logger:     s.log.With("component", "relay"),
		STUNAddr:   cfg.STUNListen,
	})
	if err != nil {
		return nil, err
	}
	s.derpMap = buildDERPMap(u, tcp.Addr().(*net.TCPAddr).Port, s.relay.STUNPort(), pin)
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
		CheckPassword:   s.checkPassword,
	})
	if err != nil {
		return nil, err
	}
	if err := s.control.Load(ctx); err != nil {
		return nil, err
	}
	if err := s.startProvisioning(ctx); err != nil {
		return nil, err
	}
	handler, err := s.routes()
	if err != nil {
		return nil, err
	}
	s.httpSrv = &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	s.tlsSrv = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		// DERP hijacks the connection, which needs HTTP/1.1.
		TLSConfig:    &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}},
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	return s, nil
}

// Serve starts serving in the background.
func (s *Server) Serve() {
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.httpSrv.Serve(s.ln.plain)
	}()
	go func() {
		defer s.wg.Done()
		s.tlsSrv.Serve(tls.NewListener(s.ln.tls, s.tlsSrv.TLSConfig))
	}()
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

// Close stops serving and closes everything. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.ln != nil {
			s.ln.Close()
		}
		if s.control != nil {
			s.control.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, srv := range []*http.Server{s.httpSrv, s.tlsSrv} {
			if srv != nil {
				if err := srv.Shutdown(ctx); err != nil {
					srv.Close()
				}
			}
		}
		s.wg.Wait()
		if s.builds != nil {
			s.builds.Close()
		}
		if s.relay != nil {
			s.relay.Close()
		}
		if s.store != nil {
			s.store.Close()
		}
	})
	return nil
}

// buildDERPMap describes the embedded relay as region 900. The node is
// reached at the access URL's host; a self-signed certificate is pinned
// by hash.
func buildDERPMap(u *url.URL, listenPort, stunPort int, pin string) *tailcfg.DERPMap {
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
	return &tailcfg.DERPMap{
		Regions: map[int]*tailcfg.DERPRegion{
			900: {RegionID: 900, RegionCode: "devmesh", RegionName: "devmesh embedded relay", Nodes: []*tailcfg.DERPNode{n}},
		},
		OmitDefaultRegions: true,
	}
}
