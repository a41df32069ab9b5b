package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/coordinator/client"
)

// newUserActionCmd builds a `users VERB NAME` command that calls run and
// prints what it returns.
func newUserActionCmd(use, short, long string, run func(ctx context.Context, c *client.Client, name string) (string, error)) *cobra.Command {
	return &cobra.Command{
		Use:   use + " NAME",
		Short: short,
		Long:  long,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := newAPIClient()
			if err != nil {
				return err
			}
			msg, err := run(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), msg)
			return err
		},
	}
}

func newUsersDisableCmd() *cobra.Command {
	return newUserActionCmd("disable", "Disable an account: it stops working at once",
		`Disable an account. At once its sessions and API tokens are refused, it
cannot log in, its auth keys register no device, and its devices and
workspace agents are removed from the tailnet. Nothing is deleted:
`+"`devmesh users enable NAME`"+` lets the user log in again (devices then log in
again; workspace agents rejoin when their workspace restarts). You cannot
disable yourself or the last enabled admin.`,
		func(ctx context.Context, c *client.Client, name string) (string, error) {
			u, err := c.DisableUser(ctx, name)
			return fmt.Sprintf("Disabled user %s.", u.Username), err
		})
}

func newUsersEnableCmd() *cobra.Command {
	return newUserActionCmd("enable", "Enable a disabled account", "",
		func(ctx context.Context, c *client.Client, name string) (string, error) {
			u, err := c.EnableUser(ctx, name)
			return fmt.Sprintf("Enabled user %s.", u.Username), err
		})
}

func newUsersDeleteCmd() *cobra.Command {
	return newUserActionCmd("delete", "Delete an account that owns no workspaces",
		`Delete an account with its sessions, API tokens, auth keys and devices.
The account must own no workspaces (delete them first) and must not have
pushed templates (disable it instead). You cannot delete yourself or the
last enabled admin.`,
		func(ctx context.Context, c *client.Client, name string) (string, error) {
			return fmt.Sprintf("Deleted user %s.", name), c.DeleteUser(ctx, name)
		})
}

func newUsersRevokeSessionsCmd() *cobra.Command {
	return newUserActionCmd("revoke-sessions", "Log an account out everywhere",
		`Delete all of an account's login sessions: every `+"`devmesh login`"+` of it
must log in again. Its API tokens stay (see `+"`devmesh tokens`"+`).`,
		func(ctx context.Context, c *client.Client, name string) (string, error) {
			r, err := c.RevokeUserSessions(ctx, name)
			return fmt.Sprintf("Revoked %d sessions of %s.", r.Revoked, name), err
		})
}
