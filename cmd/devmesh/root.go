package main

import (
	"github.com/spf13/cobra"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "devmesh",
		Short:         "Developer workspaces over direct, end-to-end encrypted WireGuard tunnels",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newVersionCmd(),
	)
	return root
}
