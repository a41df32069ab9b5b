package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/devmesh/devmesh/coordinator/client"
)

// defaultAgentTimeout is how long `devmesh create` waits, after a
// template workspace's first build, for its agents to connect: they start
// during the build and connect once it has registered their tokens; a
// cloud machine may take minutes to boot.
const defaultAgentTimeout = 5 * time.Minute

// agentPollInterval is how often the agents' status is read while waiting.
const agentPollInterval = 250 * time.Millisecond

// waitAgentsReady waits until every agent of workspace name is connected
// and has published its SSH host key (what `devmesh ssh` needs), then
// says how to connect. timeout 0 does not wait.
func waitAgentsReady(ctx context.Context, stdout, stderr io.Writer, c *client.Client, name string, timeout time.Duration) error {
	if timeout <= 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	said := ""
	var last client.Workspace
	for {
		ws, err := c.Workspace(wctx, name)
		if err != nil && wctx.Err() == nil {
			return err
		}
		if err == nil {
			last = ws
			waiting := notReady(ws)
			if len(waiting) == 0 {
				return printReady(stdout, ws, time.Since(start))
			}
			if msg := fmt.Sprintf("Waiting for agent %s to connect...", strings.Join(waiting, ", ")); msg != said {
				fmt.Fprintln(stderr, msg)
				said = msg
			}
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return fmt.Errorf("stopped waiting for the agents; the workspace is started (`devmesh show %s` shows them)", name)
			}
			who := "the agents"
			if names := notReady(last); len(names) > 0 {
				who = "agent " + strings.Join(names, ", ")
			}
			return fmt.Errorf("the build succeeded, but %s of %s did not connect within %v: look at the agent's output on "+
				"the workspace's host (for the local and netns templates, agent.log in the workspace directory `devmesh show %s` "+
				"lists); `devmesh show %s` shows its status", who, name, timeout, name, name)
		case <-time.After(agentPollInterval):
		}
	}
}

// notReady names the agents of ws that are not connected or have not
// published their SSH host key.
func notReady(ws client.Workspace) []string {
	var names []string
	for _, a := range ws.Agents {
		if a.Status != client.AgentConnected || a.SSHHostKey == "" {
			names = append(names, a.Name)
		}
	}
	return names
}

// printReady tells, on stdout, that the workspace can be reached and how.
func printReady(w io.Writer, ws client.Workspace, waited time.Duration) error {
	if len(ws.Agents) == 0 {
		_, err := fmt.Fprintf(w, "Workspace %s is started; its template declares no agent, so there is nothing to connect to.\n", ws.Name)
		return err
	}
	if len(ws.Agents) == 1 {
		fmt.Fprintf(w, "Workspace %s is ready (agent %s connected %v after the build).\n", ws.Name, ws.Agents[0].Name, waited.Round(100*time.Millisecond))
		_, err := fmt.Fprintf(w, "Connect with: devmesh ssh %s\n", ws.Name)
		return err
	}
	fmt.Fprintf(w, "Workspace %s is ready (agents connected %v after the build).\n", ws.Name, waited.Round(100*time.Millisecond))
	for _, a := range ws.Agents {
		fmt.Fprintf(w, "Connect with: devmesh ssh %s.%s\n", ws.Name, a.Name)
	}
	return nil
}
