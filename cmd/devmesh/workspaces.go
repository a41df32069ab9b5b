package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/coordinator/client"
)

// createOptions are the flags of `devmesh create`.
type createOptions struct {
	external     bool
	template     string
	vars         []string // K=V
	params       paramFlags
	noWait       bool
	agentTimeout time.Duration
	output       string
	autostart    string
	ttl          time.Duration
	ttlSet       bool // --ttl given (0 included: no autostop)
}

func newCreateCmd() *cobra.Command {
	var o createOptions
	cmd := &cobra.Command{
		Use:   "create WS (--external | --template NAME [--param K=V]... [--param-file F] [--var K=V]...)",
		Short: "Create a workspace",
		Long: `Create a workspace.

With --template the coordinator builds the workspace with the template's
active version, the given parameters and variables. Parameters are the
template's devmesh_parameter choices (see ` + "`devmesh templates versions NAME`" + `): on a
terminal devmesh asks for each required one not given; without one, a
missing required parameter is an error naming it. The command follows the build's log
(terraform's output, on stderr) until it ends, then waits for the
workspace's agents to connect, and tells how to connect. It exits non-zero
if the build failed (the workspace stays: fix the cause and run
` + "`devmesh start WS`" + `, or ` + "`devmesh delete WS`" + `) or an agent did not connect within
--agent-timeout. Ctrl-C asks whether to cancel the build; --no-wait returns
as soon as the build is queued.

With --external the workspace is a machine you bring: the command prints the
agent token once, on the last line of stdout, and (on stderr) how to start
the agent on that machine:

  DEVMESH_URL=URL DEVMESH_AGENT_TOKEN=<token> devmesh agent`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(o.output); err != nil {
				return err
			}
			o.ttlSet = cmd.Flags().Changed("ttl")
			req, err := o.request(args[0])
			if err != nil {
				return err
			}
			c, creds, err := newAPIClient()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if req.Template != "" {
				if req.Parameters, err = o.parameters(cmd, c, req.Template); err != nil {
					return err
				}
			}
			created, err := c.CreateWorkspace(ctx, req)
			if err != nil {
				return err
			}
			if o.output == outputJSON && created.Build == nil {
				return writeJSONOutput(cmd.OutOrStdout(), created) // the agent token is in it, shown only now
			}
			if created.Build == nil {
				return printCreated(cmd.OutOrStdout(), cmd.ErrOrStderr(), agentEnv(creds), created)
			}
			ws := created.Workspace
			fmt.Fprintf(cmd.ErrOrStderr(), "Created workspace %s from template %s (version %d).\n", ws.Name, ws.Template, ws.TemplateVersion)
			if o.output == outputJSON {
				// Progress on stderr; stdout gets the workspace as it ends up.
				bw := newBuildWaiter(cmd, c, ws.Name)
				bw.out = cmd.ErrOrStderr()
				err := bw.queued(ctx, *created.Build, o.noWait)
				if err == nil && !o.noWait {
					err = waitAgentsReady(ctx, cmd.ErrOrStderr(), cmd.ErrOrStderr(), c, ws.Name, o.agentTimeout)
				}
				if err != nil {
					return err
				}
				final, err := c.Workspace(ctx, ws.Name)
				if err != nil {
					return err
				}
				return writeJSONOutput(cmd.OutOrStdout(), client.CreatedWorkspace{Workspace: final, Build: final.LatestBuild})
			}
			if err := newBuildWaiter(cmd, c, ws.Name).queued(ctx, *created.Build, o.noWait); err != nil || o.noWait {
				return err
			}
			return waitAgentsReady(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), c, ws.Name, o.agentTimeout)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.external, "external", false, "bring your own machine: run 'devmesh agent' on it with the printed token")
	f.StringVar(&o.template, "template", "", "create the workspace from this template")
	f.StringArrayVar(&o.vars, "var", nil, "a template variable, K=V (repeatable)")
	o.params.add(cmd)
	addOutputFlag(cmd, &o.output)
	f.BoolVar(&o.noWait, "no-wait", false, "with --template: return once the first build is queued")
	addAgentTimeoutFlag(cmd, &o.agentTimeout)
	f.StringVar(&o.autostart, "autostart", "", `with --template: start the workspace at these times, a cron spec such as "CRON_TZ=Europe/Berlin 30 8 * * 1-5" (see devmesh schedule)`)
	f.DurationVar(&o.ttl, "ttl", 0, "with --template: stop the workspace this long after it started or was last in use (default: the template's; 0: never)")
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
	case o.external && o.params.given():
		return req, errors.New("--param and --param-file apply only with --template")
	case o.external && o.noWait:
		return req, errors.New("--no-wait applies only with --template (an external workspace is created at once)")
	case o.external && (o.autostart != "" || o.ttlSet):
		return req, errors.New("--autostart and --ttl apply only with --template (an external workspace has no builds to start or stop)")
	case o.ttl < 0:
		return req, errors.New("--ttl must not be negative")
	}
	req.Autostart = o.autostart
	if o.ttlSet {
		ms := o.ttl.Milliseconds()
		req.TTLMs = &ms
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

// parameters returns the --param values, after asking on a terminal for
// the template's required parameters that have none.
func (o createOptions) parameters(cmd *cobra.Command, c *client.Client, template string) (map[string]string, error) {
	values, err := o.params.parse()
	if err != nil {
		return nil, err
	}
	v, err := c.ActiveTemplateVersion(cmd.Context(), template)
	if err != nil {
		return values, nil // the create says what is wrong (no such template, provisioning disabled)
	}
	if err := askParams(cmd.InOrStdin(), cmd.ErrOrStderr(), stdinIsTerminal(cmd), v.Parameters, values); err != nil {
		return nil, err
	}
	return values, nil
}

// printCreated reports a new workspace; an agent token goes alone on the
// last line of stdout, the only time it is shown.
func printCreated(stdout, stderr io.Writer, env string, created client.CreatedWorkspace) error {
	ws := created.Workspace
	if created.AgentToken == "" {
		_, err := fmt.Fprintf(stdout, "Created workspace %s.\n", ws.Name)
		return err
	}
	fmt.Fprintf(stderr, "Created workspace %s (external) with agent %s.\n", ws.Name, agentNames(ws))
	fmt.Fprintf(stderr, "Start the agent on the workspace's machine with the agent token printed below (shown only now):\n\n")
	fmt.Fprintf(stderr, "  %s DEVMESH_AGENT_TOKEN=<token> devmesh agent\n\n", env)
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
	var all bool
	cmd := &cobra.Command{
		Use:     "list [--all]",
		Aliases: []string{"ls"},
		Short:   "List your workspaces and the state of their agents",
		Long: `List your workspaces and the state of their agents.

--all (admins) lists every user's workspaces with an OWNER column; admins
address them as OWNER/WS in show, logs, builds, start, stop, update and
delete (ssh and the other connections too, when the server runs with
--admins-reach-all). See docs/admin.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, _, err := newAPIClient()
			if err != nil {
				return err
			}
			list := (*client.Client).ListWorkspaces
			if all {
				list = (*client.Client).ListAllWorkspaces
			}
			workspaces, err := list(c, cmd.Context())
			if err != nil {
				return err
			}
			if output == outputJSON {
				return writeJSONOutput(cmd.OutOrStdout(), workspaces)
			}
			if len(workspaces) == 0 && !all {
				fmt.Fprintln(cmd.ErrOrStderr(), "You have no workspaces. Create one with `devmesh create WS --template NAME` (see `devmesh templates list`) or `devmesh create WS --external`.")
			}
			return writeWorkspaceTable(cmd.OutOrStdout(), workspaces, all)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "every user's workspaces, with their owners (admins)")
	addOutputFlag(cmd, &output)
	return cmd
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

func newDeleteCmd() *cobra.Command {
	var noWait, yes bool
	cmd := &cobra.Command{
		Use:     "delete WS",
		Aliases: []string{"rm"},
		Short:   "Delete a workspace: its resources are destroyed, its agents' tokens revoked, their nodes leave the tailnet",
		Long: `Delete a workspace.

A workspace from a template is deleted by a build that runs terraform
destroy: the command follows its log until it ends and exits non-zero if
it failed (the workspace then stays, with its state: fix the cause and
delete again). --no-wait returns once the build is queued.

An external workspace is deleted at once: its agents' tokens stop working
and their nodes leave the tailnet; nothing on the machine is touched.

On a terminal devmesh asks for confirmation first; --yes skips the
question (without a terminal, e.g. in scripts, nothing is asked). Admins
delete another user's workspace as OWNER/WS.`,
		Args: cobra.ExactArgs(1),
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
			// args[0], not ws.Name: an admin's OWNER/WS names another
			// user's workspace.
			name := args[0]
			if !yes && stdinIsTerminal(cmd) {
				if ok, err := askYesNo(cmd.InOrStdin(), cmd.ErrOrStderr(), deletePrompt(name, ws)); err != nil || !ok {
					if err == nil {
						err = errors.New("not deleted")
					}
					return err
				}
			}
			b, err := c.DeleteWorkspace(ctx, name)
			if err != nil {
				return err
			}
			if b != nil {
				if err := newBuildWaiter(cmd, c, name).queued(ctx, *b, noWait); err != nil || noWait {
					return err
				}
				waitGone(ctx, c, name)
				forgetHostKeys(cmd.ErrOrStderr(), name)
				return nil
			}
			forgetHostKeys(cmd.ErrOrStderr(), name)
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Deleted workspace %s.\n", name)
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
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "for a workspace from a template: return once the delete build is queued")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation (devmesh asks only on a terminal)")
	return cmd
}

// waitGone waits, briefly, until the workspace whose delete build has
// succeeded is gone (the coordinator removes it a moment after the
// build), so that a `devmesh list` right after no longer shows it.
func waitGone(ctx context.Context, c *client.Client, name string) {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if _, err := c.Workspace(ctx, name); err != nil {
			return // gone (404), or nothing more to learn
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// deletePrompt is the confirmation question for deleting ws.
func deletePrompt(name string, ws client.Workspace) string {
	what := "its resources are destroyed"
	if ws.Template == "" {
		what = "its agents' tokens are revoked"
	}
	return fmt.Sprintf("Delete workspace %s (owner %s)? %s. [y/N] ", name, ws.Owner, what)
}

// askYesNo asks question on out and reads a yes or no from in.
func askYesNo(in io.Reader, out io.Writer, question string) (bool, error) {
	fmt.Fprint(out, question)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && line == "" {
		return false, fmt.Errorf("no answer: %w", err)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}
