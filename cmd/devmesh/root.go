package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "devmesh",
		Short:         "Developer workspaces over direct, end-to-end encrypted WireGuard tunnels",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Every flag can also be set as DEVMESH_<FLAG> (dashes become
		// underscores); an explicit flag wins.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return bindEnv(cmd) },
	}
	root.AddCommand(
		newVersionCmd(),
		newServerCmd(),
		newLoginCmd(),
		newLogoutCmd(),
		newWhoamiCmd(),
		newUsersCmd(),
		newTokensCmd(),
		newAuthKeysCmd(),
		newNodesCmd(),
		newProviderCmd(),
		newCreateCmd(),
		newListCmd(),
		newShowCmd(),
		newDeleteCmd(),
		newLogsCmd(),
		newAgentCmd(),
		newTemplatesCmd(),
		newStartCmd(),
		newStopCmd(),
		newRestartCmd(),
		newUpdateCmd(),
		newBuildsCmd(),
		newCancelCmd(),
		newScheduleCmd(),
		newSSHCmd(),
		newConfigSSHCmd(),
		newPortForwardCmd(),
		newPingCmd(),
		newSpeedtestCmd(),
		newNetcheckCmd(),
		newDaemonCmd(),
		newVPNCmd(),
		newOpenCmd(),
	)
	addCompletion(root)
	return root
}

// bindEnv sets each unset flag of cmd from its DEVMESH_<FLAG> variable.
func bindEnv(cmd *cobra.Command) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		name := "DEVMESH_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if e := cmd.Flags().Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", name, v, e)
			}
		}
	})
	return err
}
