package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/coordinator/client"
)

// errorJSON is an error as `-o json` reports it on stderr.
type errorJSON struct {
	Error string `json:"error"`
	Code  string `json:"code,omitempty"` // the API's error code, if the API said no
}

// reportError writes err for the user: as JSON when the command that
// failed was asked for -o json, else as "error: ..." text.
func reportError(w io.Writer, cmd *cobra.Command, err error) {
	if cmd != nil {
		if f := cmd.Flags().Lookup("output"); f != nil && f.Value.String() == outputJSON {
			writeJSONOutput(w, errorJSON{Error: err.Error(), Code: client.ErrorCode(err)})
			return
		}
	}
	fmt.Fprintln(w, "error:", err)
}
