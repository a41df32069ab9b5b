package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/provision/tfprovider"
)

// newProviderCmd serves the devmesh Terraform provider. Terraform starts it
// through the plugin mirror that provision installs for each build (a sh
// script that execs `devmesh terraform-provider`); people never run it.
func newProviderCmd() *cobra.Command {
	return &cobra.Command{
		Use:                tfprovider.Subcommand,
		Short:              "Serve the devmesh Terraform provider to terraform",
		Hidden:             true,
		Args:               cobra.ArbitraryArgs,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Terraform decides when its plugin stops (it shuts it down
			// after a graceful interrupt), so signals must not cancel it.
			return tfprovider.Serve(context.WithoutCancel(cmd.Context()))
		},
	}
}
