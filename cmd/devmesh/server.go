package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/coordinator"
	"github.com/devmesh/devmesh/coordinator/api"
	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/coordinator/control"
)

type serverOptions struct {
	dataDir          string
	listen           string
	accessURL        string
	stunListen       string
	disableSTUN      bool
	tlsCert, tlsKey  string
	tlsSelfSigned    bool
	nodeKeyExpiry    time.Duration
	dnsDomain        string
	ephemeralTimeout time.Duration
	adminsReachAll   bool
	logLevel         string
	logFormat        string
	metricsListen    string

	terraformPath         string
	provisioners          int
	disableProvisioning   bool
	providerMirrors       []string
	allowProviderDownload bool
	binariesDir           string

	maxWorkspaces, maxExternalAgents int
}

func defaultDataDir() string {
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "devmesh")
	}
	return ".devmesh"
}

func newServerCmd() *cobra.Command {
	o := &serverOptions{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the coordinator: API, control plane, DERP relay and STUN",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServer(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", defaultDataDir(), "directory for the SQLite database and server keys")
	f.StringVar(&o.listen, "listen", "127.0.0.1:8080", "TCP address for HTTP, the API, the control plane and DERP over TLS")
	f.StringVar(&o.accessURL, "access-url", "", "URL clients use to reach this server (default http://<listen>)")
	f.StringVar(&o.stunListen, "stun-listen", "", "UDP address for STUN (default: the --listen host, port 3478)")
	f.BoolVar(&o.disableSTUN, "disable-stun", false, "do not serve STUN (nodes then find direct paths less often)")
	f.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate file (default: a persisted self-signed certificate, pinned for clients)")
	f.StringVar(&o.tlsKey, "tls-key", "", "TLS key file for --tls-cert")
	f.BoolVar(&o.tlsSelfSigned, "tls-self-signed", false, "serve the API over HTTPS with the persisted self-signed certificate; clients pin its fingerprint at login (--access-url defaults to https://<listen>)")
	f.DurationVar(&o.nodeKeyExpiry, "node-key-expiry", 180*24*time.Hour, "how long a device stays logged in (0: never expires)")
	f.DurationVar(&o.ephemeralTimeout, "ephemeral-timeout", 30*time.Second, "how long an ephemeral node may stay disconnected before it is deleted")
	f.StringVar(&o.dnsDomain, "dns-domain", control.DefaultDomain, "MagicDNS base domain: workspaces resolve as WS.USER.<domain>, and as WS.<domain> for their owner")
	f.BoolVar(&o.adminsReachAll, "admins-reach-all", false, "let admins' devices reach every workspace agent")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&o.logFormat, "log-format", "text", "log format: text (key=value) or json (one object per line)")
	f.StringVar(&o.metricsListen, "metrics-listen", "", "TCP address serving /metrics and /debug/pprof/ WITHOUT authentication (bind it to loopback or a private network); on --listen they need an admin's token")
	f.StringVar(&o.terraformPath, "terraform-path", "", "terraform (1.5 or newer) or OpenTofu executable for builds (default: terraform on PATH, else tofu)")
	f.IntVar(&o.provisioners, "provisioners", 2, "how many workspace builds run at once")
	f.BoolVar(&o.disableProvisioning, "disable-provisioning", false, "run no terraform: no templates or template workspaces (for a coordinator without terraform)")
	f.StringArrayVar(&o.providerMirrors, "provider-mirror", nil, "directory made by `terraform providers mirror` with providers templates may use (repeatable)")
	f.StringVar(&o.binariesDir, "binaries-dir", "", "release directory (make release) whose devmesh-OS-ARCH binaries are served to workspaces at /bin/ (default: this binary's directory if it holds SHA256SUMS)")
	f.BoolVar(&o.allowProviderDownload, "allow-provider-download", false, "let terraform download providers other than devmesh's from their registries")
	f.IntVar(&o.maxWorkspaces, "max-workspaces-per-user", 50, "most workspaces one user (admins too) may own (0: unlimited)")
	f.IntVar(&o.maxExternalAgents, "max-external-agents-per-user", 20, "most external (bring-your-own-machine) workspace agents one user may own (0: unlimited)")
	return cmd
}

func runServer(cmd *cobra.Command, o *serverOptions) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	if o.maxWorkspaces < 0 || o.maxExternalAgents < 0 {
		return fmt.Errorf("--max-workspaces-per-user and --max-external-agents-per-user: want 0 (unlimited) or more")
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together")
	}
	if o.tlsSelfSigned && o.tlsCert != "" {
		return fmt.Errorf("--tls-self-signed and --tls-cert exclude each other")
	}
	if o.tlsSelfSigned && strings.HasPrefix(o.accessURL, "http://") {
		return fmt.Errorf("--tls-self-signed serves HTTPS: give an https:// --access-url")
	}
	if err := control.ValidateDomain(o.dnsDomain); err != nil {
		return fmt.Errorf("--dns-domain: %w", err)
	}
	log, err := newServerLogger(cmd.ErrOrStderr(), o.logFormat, level)
	if err != nil {
		return err
	}
	stun := o.stunListen
	if stun == "" {
		stun = defaultSTUNListen(o.listen)
	}
	if o.accessURL != "" {
		if _, err := client.ParseURL(o.accessURL); err != nil {
			return fmt.Errorf("--access-url: %w", err)
		}
	}
	if o.disableSTUN {
		stun = ""
	}
	srv, err := coordinator.New(coordinator.Config{
		DataDir:        o.dataDir,
		Listen:         o.listen,
		AccessURL:      o.accessURL,
		STUNListen:     stun,
		TLSCertFile:    o.tlsCert,
		TLSKeyFile:     o.tlsKey,
		TLSSelfSigned:  o.tlsSelfSigned,
		Logger:         log,
		Policy:         control.Policy{AdminsReachAll: o.adminsReachAll},
		NodeKeyExpiry:  o.nodeKeyExpiry,
		EphemeralAfter: o.ephemeralTimeout,
		DNSDomain:      o.dnsDomain,

		TerraformPath:         o.terraformPath,
		Provisioners:          o.provisioners,
		DisableProvisioning:   o.disableProvisioning,
		ProviderMirrors:       o.providerMirrors,
		AllowProviderDownload: o.allowProviderDownload,
		BinariesDir:           o.binariesDir,

		Quotas: api.Quotas{MaxWorkspacesPerUser: o.maxWorkspaces, MaxExternalAgentsPerUser: o.maxExternalAgents},

		MetricsListen: o.metricsListen,
	})
	if err != nil {
		return err
	}
	if err := srv.Start(cmd.Context()); err != nil {
		return err
	}
	defer srv.Close()
	stderr := cmd.ErrOrStderr()
	if w := plainHTTPWarning(srv.URL()); w != "" {
		log.Warn("the access URL is plain HTTP on a non-loopback host", "access_url", srv.URL())
		fmt.Fprint(stderr, w)
	}
	abs, _ := filepath.Abs(o.dataDir)
	stunMsg := "disabled"
	if p := srv.DERPMap().Regions[900].Nodes[0].STUNPort; p > 0 {
		stunMsg = fmt.Sprintf("udp/%d", p)
		if r := srv.DERPMap().Regions[901]; r != nil { // the second STUN port
			stunMsg += fmt.Sprintf(" and udp/%d", r.Nodes[0].STUNPort)
		}
	}
	fmt.Fprintf(cmd.ErrOrStderr(), `devmesh coordinator is running
  access URL: %s
  dashboard:  %s/ (in a browser, once an account exists)
  data dir:   %s
  relay:      DERP over TLS on the same port; STUN %s
`, srv.URL(), srv.URL(), abs, stunMsg)
	if a := srv.MetricsAddr(); a != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "  metrics:    http://%s/metrics (and /debug/pprof/), unauthenticated\n", a)
	}
	login := "devmesh login " + srv.URL() + " --username admin"
	if strings.HasPrefix(srv.URL(), "https://") && o.tlsCert == "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "  TLS:        self-signed certificate, SHA-256 fingerprint\n              %s\n", srv.Fingerprint())
		login += " --fingerprint " + srv.Fingerprint()
	}
	fmt.Fprintf(cmd.ErrOrStderr(), `
Next, in another shell:
  %s      # the first login creates the admin
`, login)
	if !o.disableProvisioning {
		fmt.Fprint(cmd.ErrOrStderr(), `  devmesh templates push local -d examples/templates/local   # from the repository's root
  devmesh create dev --template local
  devmesh ssh dev
`)
	}
	tsLogin, tsNote := srv.URL(), ""
	if srv.Fingerprint() != "" && strings.HasPrefix(tsLogin, "https://") {
		// tailscale cannot pin a certificate; the Noise protocol runs
		// over plain HTTP on the same port (see docs/security.md).
		tsLogin, tsNote = "http://"+strings.TrimPrefix(tsLogin, "https://"), "   # see docs/security.md"
	}
	fmt.Fprintf(cmd.ErrOrStderr(), `  devmesh authkeys create                  # a key for a Tailscale client
  tailscale up --login-server %s --authkey <key>%s
`, tsLogin, tsNote)
	// Run returns at the signal (nil) or when the port fails for good:
	// exit non-zero rather than run on deaf.
	err = srv.Run(cmd.Context())
	if cmd.Context().Err() != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "shutting down")
	}
	if err != nil {
		return fmt.Errorf("server stopped: %w", err)
	}
	return nil
}

// newServerLogger returns the server's logger: slog's text or JSON
// handler at level.
func newServerLogger(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// defaultSTUNPort is STUN's well-known UDP port.
const defaultSTUNPort = "3478"

// defaultSTUNListen is STUN's address when --stun-listen is not given: the
// --listen host (so a loopback coordinator does not answer STUN on every
// interface) on port 3478.
func defaultSTUNListen(listen string) string {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		host = ""
	}
	return net.JoinHostPort(host, defaultSTUNPort)
}

// plainHTTPWarning returns a loud warning when the access URL is plain
// HTTP on a host other than loopback: passwords, session and agent tokens
// would cross the network in clear text.
func plainHTTPWarning(accessURL string) string {
	u, err := url.Parse(accessURL)
	if err != nil || u.Scheme != "http" || isLoopbackHost(u.Hostname()) {
		return ""
	}
	reconnect := ""
	if ip, err := netip.ParseAddr(u.Hostname()); err != nil || !ip.IsPrivate() {
		// tailscale.com's control client (ts2021.NewClient) gives an
		// http:// URL on a public address or any name an https://HOST:443
		// fallback, and after a control connection drops within two
		// minutes of its last dial it tries only that fallback.
		reconnect = `Nodes may also never reconnect after their control connection drops (a
network change, a coordinator restart): tailscale's control client then
retries only https://` + u.Hostname() + `:443. See docs/networking.md.
`
	}
	return fmt.Sprintf(`
################################################################################
WARNING: the access URL %s is plain HTTP on a non-loopback host.
Passwords, session tokens and agent tokens will cross the network
unencrypted, readable and replayable by anyone on the path.
Serve HTTPS: restart with --tls-self-signed (clients pin the certificate's
fingerprint at login) or with --tls-cert/--tls-key, and an https:// --access-url.
%s################################################################################

`, accessURL, reconnect)
}

// isLoopbackHost reports whether host is localhost or a loopback address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
