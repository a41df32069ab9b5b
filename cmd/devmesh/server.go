package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/coordinator"
	"github.com/devmesh/devmesh/coordinator/control"
)

type serverOptions struct {
	dataDir          string
	listen           string
	accessURL        string
	stunListen       string
	disableSTUN      bool
	tlsCert, tlsKey  string
	nodeKeyExpiry    time.Duration
	ephemeralTimeout time.Duration
	adminsReachAll   bool
	logLevel         string

	terraformPath         string
	provisioners          int
	disableProvisioning   bool
	providerMirrors       []string
	allowProviderDownload bool
	binariesDir           string
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
	f.StringVar(&o.stunListen, "stun-listen", ":3478", "UDP address for STUN")
	f.BoolVar(&o.disableSTUN, "disable-stun", false, "do not serve STUN (nodes then find direct paths less often)")
	f.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate file (default: a persisted self-signed certificate, pinned for clients)")
	f.StringVar(&o.tlsKey, "tls-key", "", "TLS key file for --tls-cert")
	f.DurationVar(&o.nodeKeyExpiry, "node-key-expiry", 180*24*time.Hour, "how long a device stays logged in (0: never expires)")
	f.DurationVar(&o.ephemeralTimeout, "ephemeral-timeout", 30*time.Second, "how long an ephemeral node may stay disconnected before it is deleted")
	f.BoolVar(&o.adminsReachAll, "admins-reach-all", false, "let admins' devices reach every workspace agent")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&o.terraformPath, "terraform-path", "", "terraform (1.5 or newer) or OpenTofu executable for builds (default: terraform on PATH, else tofu)")
	f.IntVar(&o.provisioners, "provisioners", 2, "how many workspace builds run at once")
	f.BoolVar(&o.disableProvisioning, "disable-provisioning", false, "run no terraform: no templates or template workspaces (for a coordinator without terraform)")
	f.StringArrayVar(&o.providerMirrors, "provider-mirror", nil, "directory made by `terraform providers mirror` with providers templates may use (repeatable)")
	f.StringVar(&o.binariesDir, "binaries-dir", "", "release directory (make release) whose devmesh-OS-ARCH binaries are served to workspaces at /bin/ (default: this binary's directory if it holds SHA256SUMS)")
	f.BoolVar(&o.allowProviderDownload, "allow-provider-download", false, "let terraform download providers other than devmesh's from their registries")
	return cmd
}

func runServer(cmd *cobra.Command, o *serverOptions) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together")
	}
	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
	stun := o.stunListen
	if o.disableSTUN {
		stun = ""
	}
	srv, err := coordinator.New(cmd.Context(), coordinator.Config{
		DataDir:        o.dataDir,
		Listen:         o.listen,
		AccessURL:      o.accessURL,
		STUNListen:     stun,
		TLSCertFile:    o.tlsCert,
		TLSKeyFile:     o.tlsKey,
		Logger:         log,
		Policy:         control.Policy{AdminsReachAll: o.adminsReachAll},
		NodeKeyExpiry:  o.nodeKeyExpiry,
		EphemeralAfter: o.ephemeralTimeout,

		TerraformPath:         o.terraformPath,
		Provisioners:          o.provisioners,
		DisableProvisioning:   o.disableProvisioning,
		ProviderMirrors:       o.providerMirrors,
		AllowProviderDownload: o.allowProviderDownload,
		BinariesDir:           o.binariesDir,
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	srv.Serve()
	abs, _ := filepath.Abs(o.dataDir)
	stunMsg := "disabled"
	if p := srv.DERPMap().Regions[900].Nodes[0].STUNPort; p > 0 {
		stunMsg = fmt.Sprintf("udp/%d", p)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), `devmesh coordinator is running
  access URL: %s
  data dir:   %s
  relay:      DERP over TLS on the same port; STUN %s

Next, in another shell:
  devmesh login %s --username admin      # the first login creates the admin
`, srv.URL(), abs, stunMsg, srv.URL())
	if !o.disableProvisioning {
		fmt.Fprint(cmd.ErrOrStderr(), `  devmesh templates push local -d examples/templates/local   # from the repository's root
  devmesh create dev --template local
  devmesh ssh dev
`)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), `  devmesh authkeys create                  # a key for a Tailscale client
  tailscale up --login-server %s --authkey <key>
`, srv.URL())
	<-cmd.Context().Done()
	fmt.Fprintln(cmd.ErrOrStderr(), "shutting down")
	return nil
}
