package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/coordinator/client"
)

// listSpec describes a `list` subcommand: fetch items from the API, then
// print them as a table, or as JSON with -o json.
type listSpec[T any] struct {
	short  string
	header string                                                   // tab-separated column names
	fetch  func(c *client.Client, ctx context.Context) ([]T, error) // a method expression
	row    func(T) string                                           // tab-separated cells
}

// newListSubcmd builds the `list` (alias `ls`) command of spec.
func newListSubcmd[T any](spec listSpec[T]) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   spec.short,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, _, err := newAPIClient()
			if err != nil {
				return err
			}
			items, err := spec.fetch(c, cmd.Context())
			if err != nil {
				return err
			}
			return printList(cmd.OutOrStdout(), output, items, spec.header, spec.row)
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

// printList writes items as JSON (output "json") or as an aligned table.
func printList[T any](w io.Writer, output string, items []T, header string, row func(T) string) error {
	if output == outputJSON {
		return writeJSONOutput(w, items)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, it := range items {
		fmt.Fprintln(tw, row(it))
	}
	return tw.Flush()
}
