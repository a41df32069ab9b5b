package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/tunnel"
)

func newOpenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "open",
		Short: "Open a workspace in an editor on this machine",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newOpenVSCodeCmd())
	return cmd
}

func newOpenVSCodeCmd() *cobra.Command {
	var printOnly bool
	cmd := &cobra.Command{
		Use:   "vscode WS[.AGENT] [DIR]",
		Short: "Open a workspace in VS Code (Remote - SSH over config-ssh's devmesh.WS host)",
		Long: `Open DIR of the workspace in VS Code's Remote - SSH, through the
vscode://vscode-remote/ssh-remote+devmesh.WS/DIR link. DIR is a path in the
workspace; relative to the agent's directory, which is the default.

VS Code finds devmesh.WS in ~/.ssh/config: run devmesh config-ssh once
first. Without a desktop (no DISPLAY or WAYLAND_DISPLAY on Linux), or with
--print, the link is printed instead, to open where VS Code runs.`,
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: completeWorkspaces,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := ""
			if len(args) == 2 {
				dir = args[1]
			}
			return runOpenVSCode(cmd, args[0], dir, printOnly)
		},
	}
	cmd.Flags().BoolVar(&printOnly, "print", false, "print the link instead of opening it")
	return cmd
}

func runOpenVSCode(cmd *cobra.Command, targetArg, dir string, printOnly bool) error {
	target, err := tunnel.ParseTarget(targetArg)
	if err != nil {
		return err
	}
	c, _, err := newAPIClient()
	if err != nil {
		return err
	}
	ws, err := c.Workspace(cmd.Context(), target.Workspace)
	if err != nil {
		return err
	}
	if len(ws.Agents) == 0 {
		return tunnel.NoAgents(ws)
	}
	alias := target
	agent := ws.Agents[0]
	if target.Agent != "" || len(ws.Agents) > 1 {
		found := false
		for _, a := range ws.Agents {
			if a.Name == target.Agent {
				agent, found = a, true
			}
		}
		if !found && target.Agent == "" {
			return fmt.Errorf("workspace %s has several agents: name one as %s.AGENT", ws.Name, ws.Name)
		}
		if !found {
			return fmt.Errorf("workspace %s has no agent %q", ws.Name, target.Agent)
		}
	}
	switch {
	case dir == "" && agent.Dir == "":
		return fmt.Errorf("agent %s has no directory of its own: give DIR, an absolute path in the workspace", agent.Name)
	case dir == "":
		dir = agent.Dir
	case !path.IsAbs(strings.ReplaceAll(dir, `\`, "/")) && !(len(dir) >= 2 && dir[1] == ':'):
		if agent.Dir == "" {
			return fmt.Errorf("directory %q: want an absolute path (agent %s has no directory to start from)", dir, agent.Name)
		}
		dir = path.Join(strings.ReplaceAll(agent.Dir, `\`, "/"), dir)
	}
	link, err := tunnel.VSCodeURL(alias.Alias(), dir)
	if err != nil {
		return err
	}
	stderr := cmd.ErrOrStderr()
	if !configSSHDone() {
		fmt.Fprintf(stderr, "devmesh: ~/.ssh/config has no devmesh hosts: run devmesh config-ssh first, or VS Code cannot find %s.\n", alias.Alias())
	}
	name, openArgs, ok := tunnel.Opener(runtime.GOOS, os.Getenv, link)
	if ok && !printOnly {
		if _, err := exec.LookPath(name); err != nil {
			ok = false
		}
	}
	if !ok || printOnly {
		if !printOnly {
			fmt.Fprintln(stderr, "No desktop to open it on here; open this link where VS Code (with Remote - SSH) runs:")
		}
		_, err := fmt.Fprintln(cmd.OutOrStdout(), link)
		return err
	}
	fmt.Fprintf(stderr, "Opening %s\n", link)
	if out, err := exec.CommandContext(cmd.Context(), name, openArgs...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v %s (the link: %s)", name, link, err, bytes.TrimSpace(out), link)
	}
	return nil
}

// configSSHDone reports whether ~/.ssh/config holds config-ssh's block.
func configSSHDone() bool {
	p, err := sshConfigPath("")
	if err != nil {
		return false
	}
	b, err := os.ReadFile(p)
	return err == nil && bytes.Contains(b, []byte(tunnel.BlockStart))
}
