package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/internal/cliconfig"
	"github.com/devmesh/devmesh/tunnel/daemon"
)

type daemonOptions struct {
	stateDir     string
	socket       string
	hostname     string
	logLevel     string
	debug        bool
	startTimeout time.Duration
}

func newDaemonCmd() *cobra.Command {
	var o daemonOptions
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the background tailnet node for the logged-in user (ssh, port-forward, ping go through it)",
		Long: `Run a long-lived tailnet node for the logged-in user, in the foreground (logs
on stderr), until interrupted. It is registered once as a device of yours and
keeps its keys and address in the state directory across restarts.

While it runs, devmesh ssh, ssh --stdio, port-forward, ping, speedtest and
netcheck go through it over its local socket instead of starting a node of
their own (-v says which path a command took; --no-daemon skips it). Only
your OS user, and root, may use the socket.

Run it under systemd with 'devmesh daemon install'. See docs/daemon.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDaemon(cmd, o) },
	}
	cmd.Flags().StringVar(&o.stateDir, "state-dir", "", "where the node's keys are kept (default $XDG_STATE_HOME/devmesh or ~/.local/state/devmesh)")
	cmd.Flags().StringVar(&o.socket, "socket", "", "the local API's socket (default $XDG_RUNTIME_DIR/devmesh/daemon.sock, else in the state directory)")
	cmd.Flags().StringVar(&o.hostname, "hostname", "", "the device name shown in the tailnet (default: this host's name)")
	cmd.Flags().StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().BoolVar(&o.debug, "debug", false, "also log the tailnet node's internals")
	cmd.Flags().DurationVar(&o.startTimeout, "start-timeout", 30*time.Second, "how long to wait for the node to come up")
	cmd.AddCommand(newDaemonStatusCmd(), newDaemonInstallCmd(), newDaemonUninstallCmd())
	return cmd
}

// daemonPaths fills in the default state directory and socket.
func daemonPaths(stateDir, socket string) (string, string, error) {
	var err error
	if stateDir == "" {
		if stateDir, err = daemon.DefaultStateDir(); err != nil {
			return "", "", err
		}
	}
	if socket == "" {
		if socket, err = daemon.DefaultSocketPath(); err != nil {
			return "", "", err
		}
	}
	return stateDir, socket, nil
}

func runDaemon(cmd *cobra.Command, o daemonOptions) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", o.logLevel)
	}
	if o.debug {
		level = slog.LevelDebug
	}
	stateDir, socket, err := daemonPaths(o.stateDir, o.socket)
	if err != nil {
		return err
	}
	api, creds, err := newAPIClient()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	me, err := checkLogin(ctx, api, creds)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
	nodeLog := log
	if !o.debug {
		// tailscale's own logs are very chatty: only with --debug.
		nodeLog = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: max(level, slog.LevelInfo)}))
	}
	d, err := daemon.New(daemon.Options{
		ControlURL: creds.URL, StateDir: stateDir, SocketPath: socket,
		User: me.Username, Hostname: o.hostname, StartTimeout: o.startTimeout,
		ControlTLS: api.TLSConfig(), // the pinned certificate, if any
		AuthKey: func(ctx context.Context) (string, error) {
			// Used once, right away: a short expiry. Not ephemeral:
			// the daemon is a lasting device.
			k, err := api.CreateAuthKey(ctx, client.CreateAuthKeyRequest{Expiry: "5m"})
			return k.Key, err
		},
		Logger: nodeLog,
	})
	if err != nil {
		return err
	}
	log.Info("starting the devmesh daemon", "user", me.Username, "coordinator", creds.URL, "state_dir", stateDir)
	return d.Run(ctx)
}

// checkLogin makes sure the coordinator answers and the stored login
// still works, with messages that say which is wrong.
func checkLogin(ctx context.Context, api *client.Client, creds cliconfig.Credentials) (client.User, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	me, err := api.Me(ctx)
	switch code := client.ErrorCode(err); {
	case err == nil:
		return me, nil
	case code == client.CodeUnauthorized || code == client.CodeInvalidCredentials:
		return me, fmt.Errorf("your login to %s has expired or was revoked: run `devmesh login %s --username NAME` again", creds.URL, creds.URL)
	case code != "":
		return me, fmt.Errorf("the coordinator at %s refused: %w", creds.URL, err)
	}
	return me, fmt.Errorf("cannot reach the coordinator at %s: %w", creds.URL, err)
}

func newDaemonStatusCmd() *cobra.Command {
	var socket, output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show whether the daemon runs, its address and its peers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			_, socket, err := daemonPaths("x", socket)
			if err != nil {
				return err
			}
			c := daemon.NewClient(socket)
			defer c.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
			defer cancel()
			st, err := c.Status(ctx)
			if err != nil {
				return err
			}
			if output == outputJSON {
				return writeJSONOutput(cmd.OutOrStdout(), st)
			}
			return printDaemonStatus(cmd, socket, st)
		},
	}
	cmd.Flags().StringVar(&socket, "socket", "", "the daemon's socket (default as for devmesh daemon)")
	addOutputFlag(cmd, &output)
	return cmd
}

func printDaemonStatus(cmd *cobra.Command, socket string, st daemon.Status) error {
	w := cmd.OutOrStdout()
	var addrs []string
	for _, a := range st.Addrs {
		addrs = append(addrs, a.String())
	}
	fmt.Fprintf(w, "Daemon %s (pid %d) running since %s on %s\n", st.Version, st.PID, st.Started.Local().Format(time.DateTime), socket)
	fmt.Fprintf(w, "Node %s of %s at %s: %s, %s\n", st.Hostname, st.User, st.ControlURL, strings.Join(addrs, ", "), st.State)
	if len(st.Peers) == 0 {
		fmt.Fprintln(w, "No peers.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tADDRESS\tONLINE\tPATH")
	for _, p := range st.Peers {
		path := "-"
		switch {
		case p.CurAddr != "":
			path = "direct " + p.CurAddr
		case p.Relay != "":
			path = "DERP(" + p.Relay + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.DNSName, p.Addrs[0], yesNo(p.Online, "yes", "no"), path)
	}
	return tw.Flush()
}

// errNoSystemd: install and uninstall need a systemd user manager.
var errNoSystemd = errors.New("systemd was not found (no systemctl, or /run/systemd/system is missing): " +
	"run `devmesh daemon` from your session's startup instead (see docs/daemon.md)")

func systemdPresent() bool {
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		return false
	}
	_, err := exec.LookPath("systemctl")
	return err == nil
}
