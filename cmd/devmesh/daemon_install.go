package main

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/internal/cliconfig"
)

// unitName is the systemd user unit devmesh daemon install writes.
const unitName = "devmesh-daemon.service"

// userUnit renders the user unit running exe as the daemon. env holds
// the variables to pass on (never a secret: the daemon reads the stored
// login from the configuration directory).
func userUnit(exe string, env map[string]string) string {
	var b strings.Builder
	b.WriteString(`[Unit]
Description=devmesh client daemon (tailnet node for this user)
Documentation=https://github.com/devmesh/devmesh/blob/main/docs/daemon.md
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
`)
	for _, k := range slices.Sorted(maps.Keys(env)) {
		fmt.Fprintf(&b, "Environment=%s=%s\n", k, systemdQuote(env[k]))
	}
	fmt.Fprintf(&b, "ExecStart=%s daemon\n", systemdQuote(exe))
	b.WriteString(`Restart=on-failure
RestartSec=5s

[Install]
WantedBy=default.target
`)
	return b.String()
}

// systemdQuote quotes s for a unit file when it needs it.
func systemdQuote(s string) string {
	if !strings.ContainsAny(s, " \t\"'\\%$") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `%`, `%%`, `$`, `$$`)
	return `"` + r.Replace(s) + `"`
}

// userUnitDir is where systemd looks for the user's own units.
func userUnitDir() (string, error) {
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "systemd", "user"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".config", "systemd", "user"), nil
}

// daemonEnv is the environment the unit passes on: the places the user
// chose, if not the defaults.
func daemonEnv() map[string]string {
	env := map[string]string{}
	for _, k := range []string{cliconfig.EnvDir, "DEVMESH_STATE_DIR", "DEVMESH_DAEMON_SOCKET"} {
		if v := os.Getenv(k); v != "" {
			env[k] = v
		}
	}
	return env
}

func systemctlUser(args ...string) error {
	out, err := exec.Command("systemctl", append([]string{"--user"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("systemctl --user %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func newDaemonInstallCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "install",
		Short: "Install and start the daemon as a systemd user service",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !systemdPresent() {
				return errNoSystemd
			}
			if _, _, err := newAPIClient(); err != nil {
				return fmt.Errorf("log in first (the service uses your stored login): %w", err)
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			if exe, err = filepath.EvalSymlinks(exe); err != nil {
				return err
			}
			dir, err := userUnitDir()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			path := filepath.Join(dir, unitName)
			if err := os.WriteFile(path, []byte(userUnit(exe, daemonEnv())), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Wrote %s\n", path)
			if err := systemctlUser("daemon-reload"); err != nil {
				return err
			}
			if err := systemctlUser("enable", "--now", unitName); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Enabled and started %s: `systemctl --user status %s`, logs with `journalctl --user -u %s`.\n", unitName, unitName, unitName)
			return nil
		},
	}
}

func newDaemonUninstallCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "uninstall",
		Short: "Stop and remove the daemon's systemd user service",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !systemdPresent() {
				return errNoSystemd
			}
			dir, err := userUnitDir()
			if err != nil {
				return err
			}
			path := filepath.Join(dir, unitName)
			if _, err := os.Stat(path); err != nil {
				return fmt.Errorf("%s is not installed (no %s)", unitName, path)
			}
			if err := systemctlUser("disable", "--now", unitName); err != nil {
				return err
			}
			if err := os.Remove(path); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Stopped, disabled and removed %s (the node's state stays in the state directory).\n", unitName)
			return systemctlUser("daemon-reload")
		},
	}
}
