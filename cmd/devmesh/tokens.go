package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/coordinator/client"
)

func newTokensCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "Manage API tokens (for scripts and CI: DEVMESH_TOKEN)",
	}
	cmd.AddCommand(newTokensCreateCmd(), newTokensListCmd(), newTokensDeleteCmd())
	return cmd
}

func newTokensCreateCmd() *cobra.Command {
	var lifetime string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an API token; it is printed once, on the last line of stdout",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := newAPIClient()
			if err != nil {
				return err
			}
			t, err := c.CreateToken(cmd.Context(), client.CreateTokenRequest{Name: args[0], Lifetime: lifetime})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Created API token %q, valid until %s. It is shown only now:\n",
				t.Token.Name, formatTime(t.Token.ExpiresAt))
			_, err = fmt.Fprintln(cmd.OutOrStdout(), t.Secret)
			return err
		},
	}
	cmd.Flags().StringVar(&lifetime, "lifetime", "", "how long the token is valid: a duration like 720h or 30d (default 30d, at most 365d)")
	return cmd
}

func newTokensListCmd() *cobra.Command {
	return newListSubcmd(listSpec[client.Token]{
		short:  "List your API tokens (never their secrets)",
		header: "NAME\tCREATED\tEXPIRES\tLAST USED",
		fetch:  (*client.Client).ListTokens,
		row: func(t client.Token) string {
			return fmt.Sprintf("%s\t%s\t%s\t%s", t.Name, formatTime(t.CreatedAt), formatTime(t.ExpiresAt), formatTime(t.LastUsedAt))
		},
	})
}

func newTokensDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete an API token; it stops working at once",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := newAPIClient()
			if err != nil {
				return err
			}
			if err := c.DeleteToken(cmd.Context(), args[0]); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Deleted API token %q.\n", args[0])
			return err
		},
	}
}
