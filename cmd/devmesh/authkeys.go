package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/coordinator/client"
)

func newAuthKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "authkeys",
		Short: "Manage tailnet auth keys (to join official Tailscale clients)",
	}
	cmd.AddCommand(newAuthKeysCreateCmd(), newAuthKeysListCmd(), newAuthKeysRevokeCmd())
	return cmd
}

func newAuthKeysCreateCmd() *cobra.Command {
	var req client.CreateAuthKeyRequest
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create an auth key; it is printed once, on the last line of stdout",
		Long: `Create a tailnet auth key owned by you. Devices that join with it become
your nodes:

  tailscale up --login-server URL --auth-key KEY

By default a key is single-use and expires after an hour.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, creds, err := newAPIClient()
			if err != nil {
				return err
			}
			k, err := c.CreateAuthKey(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Created auth key %d (%s): %s, valid until %s.\n"+
				"Use it with: tailscale up --login-server %s --auth-key KEY\nIt is shown only now:\n",
				k.AuthKey.ID, k.AuthKey.Prefix, authKeyKind(k.AuthKey), formatTime(k.AuthKey.ExpiresAt), creds.URL)
			_, err = fmt.Fprintln(cmd.OutOrStdout(), k.Key)
			return err
		},
	}
	cmd.Flags().BoolVar(&req.Reusable, "reusable", false, "allow the key to register more than one device")
	cmd.Flags().BoolVar(&req.Ephemeral, "ephemeral", false, "remove devices registered with it soon after they go offline")
	cmd.Flags().StringVar(&req.Expiry, "expiry", "", "how long the key can be used: a duration like 30m, 24h or 7d (default 1h, at most 90d)")
	return cmd
}

func authKeyKind(k client.AuthKey) string {
	kind := []string{"single-use"}
	if k.Reusable {
		kind[0] = "reusable"
	}
	if k.Ephemeral {
		kind = append(kind, "ephemeral")
	}
	return strings.Join(kind, ", ")
}

// authKeyStatus says whether a key can still be used.
func authKeyStatus(k client.AuthKey, now time.Time) string {
	switch {
	case !k.RevokedAt.IsZero():
		return "revoked"
	case !now.Before(k.ExpiresAt):
		return "expired"
	case !k.Reusable && !k.UsedAt.IsZero():
		return "used"
	}
	return "valid"
}

func newAuthKeysListCmd() *cobra.Command {
	return newListSubcmd(listSpec[client.AuthKey]{
		short:  "List your auth keys (never the keys themselves)",
		header: "ID\tPREFIX\tKIND\tSTATUS\tCREATED\tEXPIRES\tLAST USED",
		fetch:  (*client.Client).ListAuthKeys,
		row: func(k client.AuthKey) string {
			return fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%s\t%s", k.ID, k.Prefix, authKeyKind(k), authKeyStatus(k, time.Now()),
				formatTime(k.CreatedAt), formatTime(k.ExpiresAt), formatTime(k.UsedAt))
		},
	})
}

func newAuthKeysRevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "revoke ID",
		Aliases: []string{"delete", "rm"},
		Short:   "Revoke an auth key (devices already registered with it stay)",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("invalid auth key ID %q: see `devmesh authkeys list`", args[0])
			}
			c, _, err := newAPIClient()
			if err != nil {
				return err
			}
			if err := c.RevokeAuthKey(cmd.Context(), id); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Revoked auth key %d.\n", id)
			return err
		},
	}
}
