package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/coordinator/client"
)

func newUpdateCmd() *cobra.Command {
	var (
		params       paramFlags
		noWait       bool
		agentTimeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "update WS [--param K=V]... [--param-file F]",
		Short: "Rebuild a workspace on its template's active version",
		Long: `Rebuild a workspace on its template's active version (a start build).

The workspace keeps its parameter values; --param and --param-file change
mutable ones (changing an immutable parameter is refused: create a new
workspace instead). A parameter that the new version adds takes its default,
or, on a terminal, devmesh asks for it. ` + "`devmesh list`" + ` and ` + "`devmesh show`" + ` mark
workspaces whose version is not the active one as outdated.

Like start, the command follows the build's log and then waits for the
agents; --no-wait returns once the build is queued.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			values, err := params.parse()
			if err != nil {
				return err
			}
			c, _, err := newAPIClient()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			ws, err := c.Workspace(ctx, args[0])
			if err != nil {
				return err
			}
			if ws.Template != "" {
				v, err := c.ActiveTemplateVersion(ctx, ws.Template)
				if err != nil {
					return err
				}
				for k, val := range ws.Parameters {
					if _, ok := values[k]; !ok {
						values[k] = val // carried: nothing to ask
					}
				}
				if err := askParams(cmd.InOrStdin(), cmd.ErrOrStderr(), stdinIsTerminal(cmd), v.Parameters, values); err != nil {
					return err
				}
				for k, val := range ws.Parameters {
					if values[k] == val {
						delete(values, k) // send only changes
					}
				}
			}
			b, err := c.UpdateWorkspace(ctx, args[0], client.UpdateWorkspaceRequest{Parameters: values})
			if err != nil {
				return err
			}
			if err := newBuildWaiter(cmd, c, args[0]).queued(ctx, b, noWait); err != nil || noWait {
				return err
			}
			return waitAgentsReady(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), c, args[0], agentTimeout)
		},
	}
	params.add(cmd)
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the build is queued")
	addAgentTimeoutFlag(cmd, &agentTimeout)
	return cmd
}
