package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/internal/buildinfo"
)

func newVersionCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the devmesh version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if output == outputJSON {
				return writeJSONOutput(cmd.OutOrStdout(), struct {
					Version string `json:"version"`
				}{buildinfo.Version()})
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), buildinfo.Version())
			return err
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}
