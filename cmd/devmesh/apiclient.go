package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/internal/cliconfig"
)

// newAPIClient returns a client for the logged-in coordinator (or the
// one named by DEVMESH_TOKEN/DEVMESH_URL).
func newAPIClient() (*client.Client, cliconfig.Credentials, error) {
	dir, err := cliconfig.Dir()
	if err != nil {
		return nil, cliconfig.Credentials{}, err
	}
	creds, err := cliconfig.Resolve(dir)
	if err != nil {
		return nil, cliconfig.Credentials{}, err
	}
	c, err := client.New(creds.URL, creds.Token, client.WithFingerprint(creds.Fingerprint))
	if err != nil {
		return nil, cliconfig.Credentials{}, err
	}
	return c, creds, nil
}

// Output formats for -o.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// addOutputFlag adds -o/--output to a command that lists or shows.
func addOutputFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVarP(p, "output", "o", outputTable, "output format: table or json")
}

// checkOutput validates an -o value.
func checkOutput(format string) error {
	if format != outputTable && format != outputJSON {
		return fmt.Errorf("unknown output format %q: want table or json", format)
	}
	return nil
}

func writeJSONOutput(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// formatTime renders a time for tables; the zero time is "never".
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format("2006-01-02 15:04")
}
