package main

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/tunnel"
)

// completeWorkspaces completes the first argument with the caller's
// workspace names (cobra's dynamic completion: `devmesh completion`).
func completeWorkspaces(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, _, err := newAPIClient()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	list, err := c.ListWorkspaces(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, ws := range list {
		if strings.HasPrefix(ws.Name, toComplete) {
			out = append(out, ws.Name)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeTemplates completes with template names.
func completeTemplates(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	c, _, err := newAPIClient()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	list, err := c.ListTemplates(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, t := range list {
		if strings.HasPrefix(t.Name, toComplete) {
			out = append(out, t.Name)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// addCompletion wires workspace and template name completion into the
// commands of root that take them.
func addCompletion(root *cobra.Command) {
	workspaceCmds := map[string]bool{"show": true, "delete": true, "logs": true, "builds": true, "start": true, "stop": true,
		"restart": true, "update": true, "ssh": true, "ping": true, "speedtest": true, "port-forward": true, "cancel": true}
	for _, c := range root.Commands() {
		switch {
		case workspaceCmds[c.Name()] && c.ValidArgsFunction == nil:
			c.ValidArgsFunction = completeWorkspaces
		case c.Name() == "create":
			c.RegisterFlagCompletionFunc("template", func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
				return completeTemplates(cmd, nil, toComplete)
			})
			c.ValidArgsFunction = cobra.NoFileCompletions
		case c.Name() == "templates":
			for _, sub := range c.Commands() {
				if sub.Name() != "push" && sub.Name() != "list" {
					sub.ValidArgsFunction = firstArg(completeTemplates)
				}
			}
		}
	}
}

// firstArg completes only the first argument with f.
func firstArg(f cobra.CompletionFunc) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return f(cmd, args, toComplete)
	}
}

// completeForwardPorts completes --tcp of port-forward with the ports
// listening in the workspace named by the first argument, as
// "PORT:PORT" with the process as description.
func completeForwardPorts(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	target, err := tunnel.ParseTarget(args[0])
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, _, err := newAPIClient()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ws, err := c.Workspace(cmd.Context(), target.Workspace)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	seen := map[int]bool{}
	for _, a := range ws.Agents {
		if target.Agent != "" && a.Name != target.Agent {
			continue
		}
		for _, p := range a.ListeningPorts {
			v := fmt.Sprintf("%d:%d", p.Port, p.Port)
			if seen[p.Port] || !strings.HasPrefix(v, toComplete) {
				continue
			}
			seen[p.Port] = true
			out = append(out, v+"\t"+cmp.Or(p.Process, "listening")+" on "+p.Address)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
