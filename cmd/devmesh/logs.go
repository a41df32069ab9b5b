package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/coordinator/client"
)

// logsPollInterval is how often `devmesh logs -f` asks for new lines.
const logsPollInterval = time.Second

func newLogsCmd() *cobra.Command {
	var (
		agentName string
		follow    bool
	)
	cmd := &cobra.Command{
		Use:   "logs WS",
		Short: "Print a workspace agent's logs (its startup script's output)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := newAPIClient()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			ws, err := c.Workspace(ctx, args[0])
			if err != nil {
				return err
			}
			name, err := pickAgent(ws, agentName)
			if err != nil {
				return err
			}
			return printAgentLogs(ctx, cmd.OutOrStdout(), c, ws.Name, name, follow)
		},
	}
	cmd.Flags().StringVar(&agentName, "agent", "", "the agent (needed when the workspace has several)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines until interrupted")
	return cmd
}

// pickAgent returns the named agent, or the only one.
func pickAgent(ws client.Workspace, name string) (string, error) {
	names := make([]string, 0, len(ws.Agents))
	for _, a := range ws.Agents {
		if a.Name == name || (name == "" && len(ws.Agents) == 1) {
			return a.Name, nil
		}
		names = append(names, a.Name)
	}
	switch {
	case len(names) == 0:
		return "", fmt.Errorf("workspace %s has no agents", ws.Name)
	case name == "":
		return "", fmt.Errorf("workspace %s has several agents; choose one with --agent (%s)", ws.Name, strings.Join(names, ", "))
	}
	return "", fmt.Errorf("workspace %s has no agent called %q (it has %s)", ws.Name, name, strings.Join(names, ", "))
}

// printAgentLogs prints every line, then with follow polls for new ones
// until ctx ends.
func printAgentLogs(ctx context.Context, w io.Writer, c *client.Client, ws, agent string, follow bool) error {
	var after int64
	for {
		page, err := c.AgentLogs(ctx, ws, agent, after)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for _, l := range page {
			if _, err := fmt.Fprintln(w, l.Output); err != nil {
				return err
			}
			after = l.ID
		}
		if len(page) > 0 {
			continue // there may be more right away
		}
		if !follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(logsPollInterval):
		}
	}
}
