package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/devmesh/devmesh/internal/cliconfig"
	"github.com/devmesh/devmesh/tunnel"
)

type configSSHOptions struct {
	yes         bool
	dryRun      bool
	sshConfig   string
	devmeshPath string
}

func newConfigSSHCmd() *cobra.Command {
	var o configSSHOptions
	cmd := &cobra.Command{
		Use:   "config-ssh",
		Short: "Let OpenSSH, VS Code and JetBrains Gateway reach your workspaces as devmesh.WS",
		Long: `Write a managed block into ~/.ssh/config so that "ssh devmesh.WS" (and
devmesh.WS.AGENT), scp, sftp, rsync, VS Code Remote-SSH and JetBrains
Gateway reach your workspaces through "devmesh ssh --stdio".

The block is marked with START-DEVMESH and END-DEVMESH lines; nothing
outside it is changed, and running the command again only updates it. The
agents' host keys, as the coordinator published them, go to a known_hosts
file that devmesh manages in its configuration directory, and OpenSSH
checks them strictly.

Run it again after a workspace was recreated (its host key changed).
Workspaces created later work without it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runConfigSSH(cmd, o) },
	}
	cmd.Flags().BoolVarP(&o.yes, "yes", "y", false, "apply the changes without asking")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "only show the changes, as a diff")
	cmd.Flags().StringVar(&o.sshConfig, "ssh-config-file", "", "the OpenSSH config file to edit (default ~/.ssh/config)")
	cmd.Flags().StringVar(&o.devmeshPath, "devmesh-path", "", "the devmesh binary ProxyCommand runs (default: this one)")
	return cmd
}

// sshConfigPlan is what config-ssh would write.
type sshConfigPlan struct {
	configPath, knownHostsPath string
	oldConfig, newConfig       string
	oldKnown, newKnown         string
	aliases                    []string
	keys                       []tunnel.HostKey
}

func runConfigSSH(cmd *cobra.Command, o configSSHOptions) error {
	plan, err := planConfigSSH(cmd, o)
	if err != nil {
		return err
	}
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	diff := tunnel.UnifiedDiff(plan.configPath, plan.configPath, plan.oldConfig, plan.newConfig)
	if o.dryRun {
		if diff == "" {
			fmt.Fprintf(stdout, "%s is up to date.\n", plan.configPath)
		} else {
			fmt.Fprint(stdout, diff)
		}
		if plan.oldKnown != plan.newKnown {
			fmt.Fprintf(stderr, "Would also write the workspaces' host keys to %s.\n", plan.knownHostsPath)
		}
		return nil
	}
	if diff != "" && !o.yes {
		ok, err := confirm(cmd, diff, plan.configPath)
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("nothing changed")
		}
	}
	// The host keys first: the config refers to them.
	if plan.oldKnown != plan.newKnown {
		if err := tunnel.WriteKnownHosts(plan.knownHostsPath, plan.keys); err != nil {
			return err
		}
	}
	if diff != "" {
		if plan.oldConfig != "" {
			if err := os.WriteFile(plan.configPath+".devmesh.bak", []byte(plan.oldConfig), 0o600); err != nil {
				return fmt.Errorf("back up %s: %w", plan.configPath, err)
			}
		}
		if err := tunnel.WriteSSHConfig(plan.configPath, []byte(plan.newConfig)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Updated %s.\n", plan.configPath)
	} else {
		fmt.Fprintf(stdout, "%s is up to date.\n", plan.configPath)
	}
	if len(plan.aliases) == 0 {
		fmt.Fprintln(stdout, "You have no workspaces yet; once you do: ssh devmesh.WS")
	} else {
		fmt.Fprintf(stdout, "Try: ssh %s\n", plan.aliases[0])
	}
	return nil
}

func planConfigSSH(cmd *cobra.Command, o configSSHOptions) (sshConfigPlan, error) {
	var p sshConfigPlan
	api, creds, err := newAPIClient()
	if err != nil {
		return p, err
	}
	list, err := api.ListWorkspaces(cmd.Context())
	if err != nil {
		return p, fmt.Errorf("list workspaces: %w", err)
	}
	aliases, keys := tunnel.WorkspaceHosts(list)
	p.aliases, p.keys = aliases, keys
	dir, err := cliconfig.Dir()
	if err != nil {
		return p, err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return p, err
	}
	p.knownHostsPath = filepath.Join(dir, tunnel.KnownHostsName)
	if p.configPath, err = sshConfigPath(o.sshConfig); err != nil {
		return p, err
	}
	exe, err := devmeshPath(o.devmeshPath)
	if err != nil {
		return p, err
	}
	cfg := tunnel.SSHConfig{DevmeshPath: exe, KnownHostsFile: p.knownHostsPath, Coordinator: creds.URL, Aliases: aliases,
		Windows: runtime.GOOS == "windows"}
	if os.Getenv(cliconfig.EnvDir) != "" {
		cfg.ConfigDir = dir // ProxyCommand may run without this environment (VS Code)
	}
	if p.oldConfig, err = readIfExists(p.configPath); err != nil {
		return p, err
	}
	if p.newConfig, err = tunnel.ReplaceBlock(p.oldConfig, cfg.Block()); err != nil {
		return p, fmt.Errorf("%s: %w; fix or remove the devmesh lines by hand", p.configPath, err)
	}
	if p.oldKnown, err = readIfExists(p.knownHostsPath); err != nil {
		return p, err
	}
	p.newKnown = tunnel.FormatKnownHosts(keys)
	return p, nil
}

func sshConfigPath(flag string) (string, error) {
	if flag != "" {
		return filepath.Abs(flag)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find your home directory (or pass --ssh-config-file): %w", err)
	}
	return filepath.Join(home, ".ssh", "config"), nil
}

func devmeshPath(flag string) (string, error) {
	if flag != "" {
		return filepath.Abs(flag)
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the devmesh binary (pass --devmesh-path): %w", err)
	}
	return exe, nil
}

func readIfExists(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	return string(b), err
}

// confirm shows the diff and asks on the terminal.
func confirm(cmd *cobra.Command, diff, path string) (bool, error) {
	in, ok := stdinFile(cmd)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return false, fmt.Errorf("stdin is not a terminal: review the changes with --dry-run, then apply them with --yes")
	}
	w := cmd.ErrOrStderr()
	fmt.Fprint(w, diff)
	fmt.Fprintf(w, "Apply these changes to %s? [y/N] ", path)
	line, err := bufio.NewReader(io.LimitReader(in, 1024)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	answer := strings.ToLower(strings.TrimSpace(line))
	return answer == "y" || answer == "yes", nil
}
