package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/coordinator/client"
)

func newUsersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Manage accounts (admins)",
	}
	cmd.AddCommand(newUsersCreateCmd(), newUsersListCmd(), newUsersDisableCmd(), newUsersEnableCmd(),
		newUsersDeleteCmd(), newUsersRevokeSessionsCmd())
	return cmd
}

type usersCreateOptions struct {
	admin         bool
	passwordStdin bool
}

func newUsersCreateCmd() *cobra.Command {
	var o usersCreateOptions
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an account",
		Long: `Create an account. NAME becomes part of DNS names: 1-32 lowercase letters,
digits and hyphens, starting with a letter. The password is prompted for,
or read from stdin with --password-stdin.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := newAPIClient()
			if err != nil {
				return err
			}
			pw, err := readPassword(cmd, passwordPrompt{
				fromStdin: o.passwordStdin, prompt: fmt.Sprintf("Password for %s: ", args[0]), confirm: true,
			})
			if err != nil {
				return err
			}
			role := client.RoleMember
			if o.admin {
				role = client.RoleAdmin
			}
			u, err := c.CreateUser(cmd.Context(), client.CreateUserRequest{Username: args[0], Password: pw, Role: role})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Created user %s (%s).\n", u.Username, u.Role)
			return err
		},
	}
	cmd.Flags().BoolVar(&o.admin, "admin", false, "give the account the admin role")
	cmd.Flags().BoolVar(&o.passwordStdin, "password-stdin", false, "read the new password from stdin instead of prompting")
	return cmd
}

func newUsersListCmd() *cobra.Command {
	return newListSubcmd(listSpec[client.User]{
		short:  "List accounts",
		header: "ID\tUSERNAME\tROLE\tSTATUS\tCREATED",
		fetch:  (*client.Client).ListUsers,
		row: func(u client.User) string {
			return fmt.Sprintf("%d\t%s\t%s\t%s\t%s", u.ID, u.Username, u.Role, u.Status, formatTime(u.CreatedAt))
		},
	})
}
