package provision

import (
	"context"

	"github.com/hashicorp/terraform-exec/tfexec"
	tfjson "github.com/hashicorp/terraform-json"
)

// Validate checks a template archive as a template push would: the archive
// is safe, `terraform init` (offline, without backend) and `terraform
// validate` pass, and no backend is configured. It returns the template's
// variables sorted by name. Terraform's complaints come back as a
// *TerraformError whose message holds its diagnostics.
func (r *Runner) Validate(ctx context.Context, archive []byte) (Module, error) {
	w, err := r.newWorkdir(archive)
	if err != nil {
		return Module{}, err
	}
	defer w.remove()
	if _, err := moduleFiles(w.module); err != nil {
		return Module{}, err
	}
	sink := newLogSink(func(l LogLine) {
		r.log.Debug("terraform", "stage", l.Stage, "level", l.Level, "msg", l.Message)
	})
	tf, stderr, err := r.terraform(w, r.env(w, nil), sink)
	if err != nil {
		return Module{}, err
	}
	defer stderr.Flush()
	if err := r.initModule(ctx, tf, sink, tfexec.Backend(false)); err != nil {
		return Module{}, err
	}
	sink.begin(StageValidate)
	out, err := tf.Validate(ctx)
	if err != nil {
		return Module{}, &TerraformError{Stage: StageValidate, Err: err}
	}
	if !out.Valid {
		return Module{}, &TerraformError{Stage: StageValidate, Diagnostics: errorDiags(out.Diagnostics)}
	}
	return readModule(w.module)
}

func errorDiags(ds []tfjson.Diagnostic) []tfjson.Diagnostic {
	var out []tfjson.Diagnostic
	for _, d := range ds {
		if d.Severity == tfjson.DiagnosticSeverityError {
			out = append(out, d)
		}
	}
	return out
}
