package provision

import (
	"errors"
	"fmt"
	"strings"

	tfjson "github.com/hashicorp/terraform-json"
)

// Errors about the runner's environment and requests.
var (
	ErrTerraformNotFound = errors.New("terraform not found")
	ErrTerraformTooOld   = errors.New("terraform is too old")
	ErrBadTransition     = errors.New("invalid build transition")
)

// TerraformError is a failed terraform command. Its message holds
// terraform's own diagnostics (summary and detail of each error), which
// are meant for the template's author.
type TerraformError struct {
	Stage       Stage
	Diagnostics []tfjson.Diagnostic // error diagnostics, when terraform gave them as JSON
	Output      string              // terraform's stderr when it gave plain text
	Err         error               // the underlying error (exit status, context)
}

func (e *TerraformError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "terraform %s failed", e.Stage)
	for _, d := range e.Diagnostics {
		b.WriteString("\n")
		b.WriteString(formatDiagnostic(d))
	}
	if out := strings.TrimSpace(e.Output); out != "" {
		b.WriteString("\n")
		b.WriteString(out)
	}
	if len(e.Diagnostics) == 0 && e.Output == "" && e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

func (e *TerraformError) Unwrap() error { return e.Err }

// formatDiagnostic renders a diagnostic like terraform's human output:
// "Error: summary\n  on file line N:\ndetail".
func formatDiagnostic(d tfjson.Diagnostic) string {
	var b strings.Builder
	sev := "Error"
	if d.Severity == tfjson.DiagnosticSeverityWarning {
		sev = "Warning"
	}
	fmt.Fprintf(&b, "%s: %s", sev, d.Summary)
	if d.Range != nil {
		fmt.Fprintf(&b, "\n  on %s line %d", d.Range.Filename, d.Range.Start.Line)
		if d.Snippet != nil && d.Snippet.Context != nil {
			fmt.Fprintf(&b, ", in %s", *d.Snippet.Context)
		}
		b.WriteString(":")
	}
	if d.Detail != "" {
		b.WriteString("\n")
		b.WriteString(d.Detail)
	}
	return b.String()
}
