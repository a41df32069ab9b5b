package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"
	"golang.org/x/term"

	"github.com/devmesh/devmesh/internal/cliconfig"
	"github.com/devmesh/devmesh/tunnel"
)

// exitSSHFailure is `devmesh ssh`'s status when it cannot run the remote
// command at all, as with OpenSSH: a remote command's own status is then
// never confused with ours.
const exitSSHFailure = 255

type sshOptions struct {
	tunnelFlags
	stdio     bool
	forceTTY  bool
	noTTY     bool
	configDir string
	start     bool // start a stopped workspace without asking
}

func newSSHCmd() *cobra.Command {
	var o sshOptions
	cmd := &cobra.Command{
		Use:   "ssh WS[.AGENT] [-- COMMAND [ARGS...]]",
		Short: "Open a shell or run a command in a workspace over SSH",
		Long: `Open a login shell in a workspace (with a terminal when stdin is one), or run
a command there. The remote command's exit status becomes devmesh's; 255
means devmesh could not run it.

devmesh goes through the devmesh daemon when one runs, else joins the
tailnet for the duration of the command (-v says which), and verifies the workspace agent's SSH host key against the key the
coordinator published for it.

Several COMMAND words are quoted so that they arrive as the same words; a
single word is passed as is, so it may use shell syntax:
  devmesh ssh dev -- ls -l "my dir"
  devmesh ssh dev -- 'cd src && make'

With --stdio, speak raw SSH on stdin and stdout instead, for OpenSSH's
ProxyCommand (see devmesh config-ssh). WS may then be written devmesh.WS.

A stopped workspace is started first: on a terminal devmesh asks, with
--start it does not; otherwise it fails, naming --start.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.configDir != "" {
				// config-ssh's ProxyCommand on Windows, which has no env(1).
				if err := os.Setenv(cliconfig.EnvDir, o.configDir); err != nil {
					return err
				}
			}
			if o.stdio {
				if len(args) != 1 && (len(args) != 2 || args[1] != "--") {
					return errors.New("--stdio takes only the workspace, no command")
				}
				return runSSHStdio(cmd, args[0], o)
			}
			command := args[1:]
			// Flags end at the workspace, so a "--" after it arrives here.
			if len(command) > 0 && command[0] == "--" {
				command = command[1:]
			}
			return runSSH(cmd, args[0], command, o)
		},
	}
	// Flags end at the workspace: `devmesh ssh dev ls -l` runs `ls -l`.
	cmd.Flags().SetInterspersed(false)
	o.tunnelFlags.add(cmd, true)
	cmd.Flags().BoolVar(&o.stdio, "stdio", false, "bridge stdin/stdout to the agent's SSH server (for ProxyCommand)")
	cmd.Flags().BoolVarP(&o.forceTTY, "tty", "t", false, "allocate a terminal even for a command")
	cmd.Flags().BoolVarP(&o.noTTY, "no-tty", "T", false, "never allocate a terminal")
	cmd.Flags().BoolVar(&o.start, "start", false, "start the workspace first if it is stopped, without asking")
	cmd.Flags().StringVar(&o.configDir, "config-dir", "", "the configuration directory (as $"+cliconfig.EnvDir+")")
	_ = cmd.Flags().MarkHidden("config-dir")
	return cmd
}

// sshFailure prints err and returns exit status 255.
func sshFailure(cmd *cobra.Command, err error) error {
	fmt.Fprintln(cmd.ErrOrStderr(), "error:", err)
	return exitError{exitSSHFailure}
}

func runSSH(cmd *cobra.Command, targetArg string, command []string, o sshOptions) error {
	target, err := tunnel.ParseTarget(targetArg)
	if err != nil {
		return sshFailure(cmd, err)
	}
	ctx := cmd.Context()
	stderr := cmd.ErrOrStderr()
	tc, err := openTunnelStarting(ctx, cmd, target, o, true)
	if err != nil {
		return sshFailure(cmd, err)
	}
	defer tc.Close()
	dctx, cancelDial := context.WithTimeout(ctx, connectTimeout)
	c, err := tunnel.DialSSH(dctx, tc.tailnet, tc.ep, tunnel.SSHOptions{User: sshUser()})
	cancelDial()
	if err != nil {
		return sshFailure(cmd, connectError(tc, err))
	}
	defer c.Close()
	tc.prog.done("Connected")

	so := tunnel.SessionOptions{
		Command: tunnel.ShellQuote(command),
		Stdin:   cmd.InOrStdin(),
		Stdout:  cmd.OutOrStdout(),
		Stderr:  stderr,
		Env:     localeEnv(),
	}
	if len(command) == 0 {
		so.Command = ""
	}
	// The session outlives the first Ctrl-C (main cancels the command's
	// context on SIGINT): that goes to the remote command instead.
	sessCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	sigs := forwardSignals(sessCtx, cancel)
	so.Signals = sigs

	stdin, isFile := stdinFile(cmd)
	isTTY := isFile && term.IsTerminal(int(stdin.Fd()))
	wantPTY := (len(command) == 0 && isTTY) || o.forceTTY
	if o.noTTY {
		wantPTY = false
	}
	if wantPTY {
		restore, pty := setupTerminal(sessCtx, stdin, isTTY)
		defer restore()
		so.PTY = pty
	}
	st, err := tunnel.RunSession(sessCtx, c, so)
	if err != nil {
		return sshFailure(cmd, err)
	}
	if st.Code != 0 {
		return exitError{st.Code}
	}
	return nil
}

// setupTerminal puts a local terminal in raw mode (restored by the
// returned func) and describes it for the remote PTY.
func setupTerminal(ctx context.Context, tty *os.File, isTTY bool) (restore func(), pty *tunnel.PTY) {
	pty = &tunnel.PTY{Term: os.Getenv("TERM")}
	if !isTTY {
		return func() {}, pty
	}
	pty.Width, pty.Height, _ = tunnel.TerminalSize(tty)
	pty.Resize = tunnel.WatchWindowSize(ctx, tty)
	restore, err := tunnel.MakeRaw(tty)
	if err != nil {
		return func() {}, pty
	}
	return restore, pty
}

// forwardSignals delivers SIGINT, SIGTERM, SIGHUP and SIGQUIT to the
// remote command; when a second one arrives, the session is closed (the
// remote command may be ignoring them).
func forwardSignals(ctx context.Context, cancel context.CancelFunc) <-chan ssh.Signal {
	local := make(chan os.Signal, 4)
	signal.Notify(local, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	out := make(chan ssh.Signal, 4)
	go func() {
		defer signal.Stop(local)
		received := 0
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-local:
				if received++; received > 1 {
					cancel()
					return
				}
				select {
				case out <- sshSignal(s):
				default:
				}
			}
		}
	}()
	return out
}

func sshSignal(s os.Signal) ssh.Signal {
	switch s {
	case syscall.SIGTERM:
		return ssh.SIGTERM
	case syscall.SIGHUP:
		return ssh.SIGHUP
	case syscall.SIGQUIT:
		return ssh.SIGQUIT
	}
	return ssh.SIGINT
}

// localeEnv is the environment OpenSSH sends by default (SendEnv LANG
// LC_*).
func localeEnv() map[string]string {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if k == "LANG" || strings.HasPrefix(k, "LC_") {
			env[k] = v
		}
	}
	return env
}

// sshUser is the SSH user name sent; agents run sessions as their own OS
// user whatever it says.
func sshUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "devmesh"
}

// runSSHStdio bridges stdin and stdout to the agent's SSH server, for
// OpenSSH's ProxyCommand. OpenSSH verifies the host key itself, against
// the managed known_hosts file.
func runSSHStdio(cmd *cobra.Command, alias string, o sshOptions) error {
	target, err := tunnel.ParseAlias(alias)
	if err != nil {
		return err
	}
	// OpenSSH ends its ProxyCommand with SIGHUP: leave the tailnet
	// cleanly then.
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGHUP)
	defer stop()
	stderr := cmd.ErrOrStderr()
	tc, err := openTunnelStarting(ctx, cmd, target, o, false)
	if err != nil {
		return err
	}
	defer tc.Close()
	checkKnownHost(stderr, alias, tc.ep)
	dctx, cancelDial := context.WithTimeout(ctx, connectTimeout)
	conn, err := tunnel.Dial(dctx, tc.tailnet, "tcp", tc.ep.Addr, tunnel.SSHPort)
	cancelDial()
	if err != nil {
		return connectError(tc, err)
	}
	tc.prog.done("Connected")
	err = tunnel.Proxy(ctx, conn, cmd.InOrStdin(), cmd.OutOrStdout())
	if ctx.Err() != nil {
		return nil // OpenSSH is done with us
	}
	return err
}

// checkKnownHost keeps the managed known_hosts file (if config-ssh wrote
// one) current: a workspace created since gets its published key added,
// and a workspace rebuilt or re-created (a new agent) gets its new key in
// place of the old, so that OpenSSH does not cry impostor. A different key
// of the same agent is never replaced here; the user is told to run
// config-ssh, and OpenSSH refuses the connection meanwhile.
func checkKnownHost(stderr io.Writer, alias string, ep tunnel.Endpoint) {
	dir, err := cliconfig.Dir()
	if err != nil {
		return
	}
	name := strings.ToLower(alias)
	if !strings.HasPrefix(name, tunnel.AliasPrefix) {
		name = ep.Target.Alias()
	}
	path := filepath.Join(dir, tunnel.KnownHostsName)
	res, err := tunnel.EnsureKnownHost(path, name, ep.HostKey, ep.Agent.UUID)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "devmesh: could not update %s: %v\n", path, err)
	case res == tunnel.KnownHostReplaced:
		fmt.Fprintf(stderr, "devmesh: %s has a new agent (the workspace was rebuilt or re-created); its host key %s replaced the old one in %s.\n",
			name, ssh.FingerprintSHA256(ep.HostKey), path)
	case res == tunnel.KnownHostDiffers:
		fmt.Fprintf(stderr, "devmesh: %s lists another host key for %s than the coordinator now publishes (%s).\n"+
			"devmesh: If the workspace was rebuilt, run `devmesh config-ssh` to update it.\n",
			path, name, ssh.FingerprintSHA256(ep.HostKey))
	}
}

// forgetHostKeys drops a deleted workspace's entries from the managed
// known_hosts file (if config-ssh wrote one): a workspace created later
// under the same name has new host keys.
func forgetHostKeys(stderr io.Writer, ws string) {
	dir, err := cliconfig.Dir()
	if err != nil {
		return
	}
	path := filepath.Join(dir, tunnel.KnownHostsName)
	if _, err := tunnel.ForgetWorkspace(path, ws); err != nil {
		fmt.Fprintf(stderr, "devmesh: could not remove %s's host keys from %s: %v\n", ws, path, err)
	}
}
