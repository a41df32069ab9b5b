package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/coordinator/client"
)

// createOptions are the flags of `devmesh create`.
type createOptions struct {
	external bool
	template string
	vars     []string // K=V
}

func newCreateCmd() *cobra.Command {
	var o createOptions
	cmd := &cobra.Command{
		Use:   "create WS (--external | --template NAME [--var K=V]...)",
		Short: "Create a workspace",
		Long: `Create a workspace.

With --external the workspace is a machine you bring: the command prints the
agent token once, on the last line of stdout, and (on stderr) how to start
the agent on that machine:

  DEVMESH_URL=URL DEVMESH_AGENT_TOKEN=<token> devmesh agent`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := o.request(args[0])
			if err != nil {
				return err
			}
			c, creds, err := newAPIClient()
			if err != nil {
				return err
			}
			created, err := c.CreateWorkspace(cmd.Context(), req)
			if err != nil {
				return err
			}
			return printCreated(cmd.OutOrStdout(), cmd.ErrOrStderr(), creds.URL, created)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.external, "external", false, "bring your own machine: run `devmesh agent` on it with the printed token")
	f.StringVar(&o.template, "template", "", "create the workspace from this template")
	f.StringArrayVar(&o.vars, "var", nil, "a template variable, K=V (repeatable)")
	return cmd
}

// request validates the flags and builds the API request.
func (o createOptions) request(name string) (client.CreateWorkspaceRequest, error) {
	req := client.CreateWorkspaceRequest{Name: name, External: o.external, Template: o.template}
	switch {
	case o.external && o.template != "":
		return req, errors.New("choose one: --external or --template NAME")
	case !o.external && o.template == "":
		return req, errors.New("say how to create the workspace: --external (bring your own machine) or --template NAME")
	case o.external && len(o.vars) > 0:
		return req, errors.New("--var applies only with --template")
	}
	for _, kv := range o.vars {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return req, fmt.Errorf("invalid --var %q: want NAME=VALUE", kv)
		}
		if req.Variables == nil {
			req.Variables = map[string]string{}
		}
		if _, dup := req.Variables[k]; dup {
			return req, fmt.Errorf("--var %s given twice", k)
		}
		req.Variables[k] = v
	}
	return req, nil
}

// printCreated reports a new workspace; an agent token goes alone on the
// last line of stdout, the only time it is shown.
func printCreated(stdout, stderr io.Writer, url string, created client.CreatedWorkspace) error {
	ws := created.Workspace
	if created.AgentToken == "" {
		_, err := fmt.Fprintf(stdout, "Created workspace %s.\n", ws.Name)
		return err
	}
	fmt.Fprintf(stderr, "Created workspace %s (external) with agent %s.\n", ws.Name, agentNames(ws))
	fmt.Fprintf(stderr, "Start the agent on the workspace's machine with the agent token printed below (shown only now):\n\n")
	fmt.Fprintf(stderr, "  DEVMESH_URL=%s DEVMESH_AGENT_TOKEN=<token> devmesh agent\n\n", url)
	_, err := fmt.Fprintln(stdout, created.AgentToken)
	return err
}

func agentNames(ws client.Workspace) string {
	names := make([]string, 0, len(ws.Agents))
	for _, a := range ws.Agents {
		names = append(names, a.Name)
	}
	return strings.Join(names, ", ")
}

func newListCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List your workspaces and the state of their agents",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, _, err := newAPIClient()
			if err != nil {
				return err
			}
			list, err := c.ListWorkspaces(cmd.Context())
			if err != nil {
				return err
			}
			if output == outputJSON {
				return writeJSONOutput(cmd.OutOrStdout(), list)
			}
			if len(list) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "You have no workspaces. Create one with `devmesh create WS --external`.")
			}
			return writeWorkspaceTable(cmd.OutOrStdout(), list)
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

// writeWorkspaceTable writes one row per agent.
func writeWorkspaceTable(w io.Writer, list []client.Workspace) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKSPACE\tTEMPLATE\tAGENT\tSTATUS\tLIFECYCLE\tADDRESS\tVERSION\tOS/ARCH\tLAST SEEN")
	for _, ws := range list {
		if len(ws.Agents) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t-\t-\n", ws.Name, templateName(ws))
		}
		for _, a := range ws.Agents {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ws.Name, templateName(ws), a.Name, a.Status,
				a.Lifecycle, orDash(firstAddress(a)), orDash(a.Version), platform(a), lastSeen(a))
		}
	}
	return tw.Flush()
}

func templateName(ws client.Workspace) string {
	if ws.Template == "" {
		return "(external)"
	}
	return ws.Template
}

func firstAddress(a client.Agent) string {
	if len(a.Addresses) == 0 {
		return ""
	}
	return a.Addresses[0]
}

func platform(a client.Agent) string {
	if a.OS == "" {
		return "-"
	}
	return a.OS + "/" + a.Arch
}

// lastSeen says when an agent was last heard of: "now" while connected.
func lastSeen(a client.Agent) string {
	if a.Status == client.AgentConnected {
		return "now"
	}
	return formatTime(a.LastSeen)
}

func newShowCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "show WS",
		Short: "Show a workspace and its agents",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, _, err := newAPIClient()
			if err != nil {
				return err
			}
			ws, err := c.Workspace(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if output == outputJSON {
				return writeJSONOutput(cmd.OutOrStdout(), ws)
			}
			return writeWorkspace(cmd.OutOrStdout(), ws, time.Now())
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func writeWorkspace(w io.Writer, ws client.Workspace, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	fmt.Fprintf(tw, "Workspace:\t%s\n", ws.Name)
	fmt.Fprintf(tw, "Owner:\t%s\n", ws.Owner)
	fmt.Fprintf(tw, "Template:\t%s\n", templateName(ws))
	fmt.Fprintf(tw, "Created:\t%s\n", formatTime(ws.CreatedAt))
	for _, a := range ws.Agents {
		status := a.Status
		if a.Status == client.AgentDisconnected && !a.LastSeen.IsZero() {
			status += fmt.Sprintf(" (last seen %s ago)", now.Sub(a.LastSeen).Round(time.Second))
		}
		fmt.Fprintf(tw, "\nAgent %s:\n", a.Name)
		fmt.Fprintf(tw, "  Status:\t%s\n", status)
		fmt.Fprintf(tw, "  Lifecycle:\t%s\n", a.Lifecycle)
		fmt.Fprintf(tw, "  Address:\t%s\n", orDash(strings.Join(a.Addresses, ", ")))
		fmt.Fprintf(tw, "  Version:\t%s\n", orDash(a.Version))
		fmt.Fprintf(tw, "  OS/arch:\t%s\n", platform(a))
		fmt.Fprintf(tw, "  Last seen:\t%s\n", lastSeen(a))
		fmt.Fprintf(tw, "  SSH:\t%d open connections, %d bytes in, %d bytes out\n", a.Connections, a.RxBytes, a.TxBytes)
		if a.SSHHostKey != "" {
			fmt.Fprintf(tw, "  Host key:\t%s\n", a.SSHHostKey)
		}
	}
	return tw.Flush()
}

func newDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "delete WS",
		Aliases: []string{"rm"},
		Short:   "Delete a workspace: its agents' tokens are revoked and their nodes leave the tailnet",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := newAPIClient()
			if err != nil {
				return err
			}
			ws, err := c.Workspace(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := c.DeleteWorkspace(cmd.Context(), ws.Name); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Deleted workspace %s.\n", ws.Name)
			for _, a := range ws.Agents {
				if len(a.Addresses) == 0 {
					fmt.Fprintf(out, "  agent %s: token revoked (it had not joined the tailnet)\n", a.Name)
					continue
				}
				fmt.Fprintf(out, "  agent %s: token revoked, tailnet node %s removed\n", a.Name, strings.Join(a.Addresses, ", "))
			}
			return nil
		},
	}
}
