package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/coordinator/client"
)

func newWhoamiCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show the logged-in user and coordinator",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, creds, err := newAPIClient()
			if err != nil {
				return err
			}
			me, err := c.Me(cmd.Context())
			if err != nil {
				return err
			}
			if output == outputJSON {
				return writeJSONOutput(cmd.OutOrStdout(), struct {
					URL string `json:"url"`
					client.User
				}{creds.URL, me})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s (%s) on %s\n", me.Username, me.Role, creds.URL)
			return err
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}
