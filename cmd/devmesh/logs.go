package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/tunnel"
)

// logsPollInterval is how often `devmesh logs -f` asks for new lines.
const logsPollInterval = time.Second

func newLogsCmd() *cobra.Command {
	var (
		agentName string
		follow    bool
		build     int
	)
	cmd := &cobra.Command{
		Use:   "logs WS",
		Short: "Print a workspace agent's logs, or a build's log",
		Long: `Print a workspace's logs.

Without --build: the agent's log, the output of its startup script (--agent
picks one when the workspace has several). With --build N: build N's log,
terraform's output (--build 0 or --build latest: the latest build; see
` + "`devmesh builds WS`" + ` for the numbers).

-f keeps printing new lines: an agent's until interrupted, a build's until
the build has ended.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := newAPIClient()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if cmd.Flags().Changed("build") {
				if agentName != "" {
					return errors.New("choose one: --build N (a build's log) or --agent NAME (an agent's log)")
				}
				return printBuildLogs(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), c, args[0], build, follow)
			}
			ws, err := c.Workspace(ctx, args[0])
			if err != nil {
				return err
			}
			name, err := pickAgent(ws, agentName)
			if err != nil {
				if len(ws.Agents) == 0 && ws.LatestBuild != nil {
					return fmt.Errorf("%w; its build logs: devmesh logs %s --build %d", tunnel.NoAgents(ws), args[0], ws.LatestBuild.Number)
				}
				return err
			}
			n, err := printAgentLogs(ctx, cmd.OutOrStdout(), c, args[0], name, follow)
			if err == nil && n == 0 && !follow {
				fmt.Fprintln(cmd.ErrOrStderr(), emptyLogNote(ws, name, args[0]))
			}
			return err
		},
	}
	cmd.Flags().StringVar(&agentName, "agent", "", "the agent (needed when the workspace has several)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines: an agent's until interrupted, a build's until it ends")
	cmd.Flags().Var(buildNumber{&build}, "build", "print build `N`'s log instead (0 or latest: the latest build)")
	return cmd
}

// buildNumber is a --build flag: a build number, 0 or "latest".
type buildNumber struct{ n *int }

// String is "" for 0 (latest), so that help shows no default: without
// --build, logs prints the agent's log.
func (b buildNumber) String() string {
	if b.n == nil || *b.n == 0 {
		return ""
	}
	return strconv.Itoa(*b.n)
}

func (b buildNumber) Set(s string) error {
	if s == "latest" {
		*b.n = 0
		return nil
	}
	n, err := strconv.Atoi(strings.TrimPrefix(s, "#"))
	if err != nil || n < 0 {
		return fmt.Errorf("want a build number or \"latest\"")
	}
	*b.n = n
	return nil
}

func (buildNumber) Type() string { return "N" }

// printBuildLogs prints a build's log (number 0: the latest) to w, then
// with follow keeps printing until the build has ended; how it ended goes
// to errOut.
func printBuildLogs(ctx context.Context, w, errOut io.Writer, c *client.Client, ws string, number int, follow bool) error {
	var werr error
	print := func(l client.BuildLog) {
		if werr == nil {
			_, werr = fmt.Fprintln(w, l.Output)
		}
	}
	if follow {
		b, err := c.FollowBuild(ctx, ws, number, 0, print)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		fmt.Fprintf(errOut, "Build #%d (%s) of %s %s.\n", b.Number, b.Transition, ws, b.Status)
		return werr
	}
	var after int64
	for {
		page, err := c.BuildLogs(ctx, ws, number, after, false)
		if err != nil {
			return err
		}
		for _, l := range page.Logs {
			print(l)
			after = l.ID
		}
		number = page.Build.Number // the same build on every page
		if len(page.Logs) == 0 {
			if !page.Build.Finished() {
				fmt.Fprintf(errOut, "Build #%d (%s) of %s is %s (-f follows it).\n", page.Build.Number, page.Build.Transition, ws, page.Build.Status)
			}
			return werr
		}
	}
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
func printAgentLogs(ctx context.Context, w io.Writer, c *client.Client, ws, agent string, follow bool) (lines int, err error) {
	var after int64
	for {
		page, err := c.AgentLogs(ctx, ws, agent, after)
		if err != nil {
			if ctx.Err() != nil {
				return lines, nil
			}
			return lines, err
		}
		for _, l := range page {
			if _, err := fmt.Fprintln(w, l.Output); err != nil {
				return lines, err
			}
			after = l.ID
			lines++
		}
		if len(page) > 0 {
			continue // there may be more right away
		}
		if !follow {
			return lines, nil
		}
		select {
		case <-ctx.Done():
			return lines, nil
		case <-time.After(logsPollInterval):
		}
	}
}

// emptyLogNote says why agent name of ws has no log: it runs no startup
// script (the only source of an agent's log), or the script has printed
// nothing yet.
func emptyLogNote(ws client.Workspace, name, arg string) string {
	for _, a := range ws.Agents {
		if a.Name != name || a.HasStartupScript {
			continue
		}
		if ws.Template == "" {
			return fmt.Sprintf("Agent %s has no log: the agent of an external workspace runs no startup script.", name)
		}
		return fmt.Sprintf("Agent %s has no log: template %s gives it no startup_script. The build log: devmesh logs %s --build latest", name, ws.Template, arg)
	}
	return fmt.Sprintf("Agent %s's startup script has printed nothing yet. The build log: devmesh logs %s --build latest", name, arg)
}
