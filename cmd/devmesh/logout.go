package main

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/internal/cliconfig"
)

func newLogoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "End the session and delete the stored credentials",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := cliconfig.Dir()
			if err != nil {
				return err
			}
			creds, err := cliconfig.Load(dir)
			if errors.Is(err, cliconfig.ErrNotLoggedIn) {
				fmt.Fprintln(cmd.ErrOrStderr(), "Not logged in.")
				return nil
			}
			if err != nil {
				return err
			}
			c, err := client.New(creds.URL, creds.Token, client.WithFingerprint(creds.Fingerprint))
			if err != nil {
				return err
			}
			// Revoke on the server first, but drop the local copy even if
			// that fails: the user asked for it to be gone.
			serverErr := c.Logout(cmd.Context())
			var ae *client.Error
			if errors.As(serverErr, &ae) && ae.Status == http.StatusUnauthorized {
				serverErr = nil // already expired or revoked
			}
			if err := cliconfig.Remove(dir); err != nil {
				return err
			}
			if serverErr != nil {
				return fmt.Errorf("removed the local credentials, but could not end the session on %s (it expires by itself): %w", creds.URL, serverErr)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Logged out of %s.\n", creds.URL)
			return err
		},
	}
}
