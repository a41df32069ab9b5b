package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/coordinator/client"
)

func newNodesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "Manage your tailnet nodes (devices and workspace agents)",
	}
	cmd.AddCommand(newNodesListCmd(), newNodesDeleteCmd())
	return cmd
}

func newNodesListCmd() *cobra.Command {
	var (
		output string
		all    bool
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List your nodes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, _, err := newAPIClient()
			if err != nil {
				return err
			}
			nodes, err := c.ListNodes(cmd.Context(), client.ListNodesOptions{All: all})
			if err != nil {
				return err
			}
			return printList(cmd.OutOrStdout(), output, nodes, "ID\tNAME\tADDRESSES\tOS\tSTATUS\tLAST SEEN\tKEY EXPIRES",
				func(n client.Node) string {
					status := "offline"
					if n.Online {
						status = "online"
					}
					if n.Ephemeral {
						status += ", ephemeral"
					}
					return fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%s\t%s", n.ID, n.Name, strings.Join(n.Addresses, ","),
						orDash(n.OS), status, nodeLastSeen(n), formatTime(n.KeyExpiry))
				})
		},
	}
	addOutputFlag(cmd, &output)
	cmd.Flags().BoolVar(&all, "all", false, "list every user's nodes (admins)")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newNodesDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "delete ID",
		Aliases: []string{"rm"},
		Short:   "Remove a node from the tailnet (it must log in again to rejoin)",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("invalid node ID %q: see `devmesh nodes list`", args[0])
			}
			c, _, err := newAPIClient()
			if err != nil {
				return err
			}
			if err := c.DeleteNode(cmd.Context(), id); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Deleted node %d.\n", id)
			return err
		},
	}
}

// nodeLastSeen is "now" for an online node (the store records last seen
// when a node goes offline, so an online node that never went offline has
// none), else when it was last seen.
func nodeLastSeen(n client.Node) string {
	if n.Online {
		return "now"
	}
	return formatTime(n.LastSeen)
}
