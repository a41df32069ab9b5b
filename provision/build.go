package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/terraform-exec/tfexec"
	tfjson "github.com/hashicorp/terraform-json"

	"github.com/devmesh/devmesh/internal/certpin"
	"github.com/devmesh/devmesh/provision/param"
	"github.com/devmesh/devmesh/provision/tfprovider"
)

// Transition is what a build does to a workspace.
type Transition string

const (
	TransitionStart  Transition = tfprovider.TransitionStart  // terraform apply, start_count = 1
	TransitionStop   Transition = tfprovider.TransitionStop   // terraform apply, start_count = 0
	TransitionDelete Transition = tfprovider.TransitionDelete // terraform destroy
)

// Workspace describes the workspace being built, for the template (through
// the devmesh_workspace data source) and its agents.
type Workspace struct {
	ID        string
	Name      string
	Owner     string // owner's username
	AccessURL string // coordinator URL agents connect to
	// Fingerprint pins the coordinator's self-signed certificate for the
	// agents (DEVMESH_FINGERPRINT in terraform's environment, which
	// agents started on the provisioner host inherit); "" for none.
	Fingerprint string
}

// BuildRequest is one terraform run for a workspace.
type BuildRequest struct {
	Archive    []byte // template archive (see Pack)
	Transition Transition
	// State is the workspace's terraform state from its previous build;
	// nil for the first build.
	State []byte
	// Variables are values for the template's variables, in terraform's
	// -var form: taken literally for string variables, parsed as HCL
	// constants ("3", "[\"a\"]") for others. Values of variables the
	// template does not declare are ignored. They reach terraform in a
	// 0600 var file, never on a command line.
	Variables map[string]string
	// Parameters are the values of the template's devmesh_parameter data
	// sources, already checked (see param.Resolve). The provider reads them
	// from terraform's environment (param.EnvValues).
	Parameters map[string]string
	Workspace  Workspace
	// RotateAgentTokens gives every devmesh_agent already in State a new
	// token (its id stays). The coordinator asks for it on a start whose
	// workspace has no registered agents, e.g. after a stop, so that
	// tokens revoked by the stop never work again.
	RotateAgentTokens bool
	// Log receives the build's output as it happens, one call at a time.
	// Optional.
	Log func(LogLine)
}

// BuildResult is what a build left behind.
type BuildResult struct {
	// State is terraform.tfstate after the build; on failure it is still
	// set whenever terraform left one (it records what was created before
	// the failure), and must be stored like a successful build's.
	State     []byte
	Agents    []Agent
	Metadata  []Metadata
	Resources []Resource
}

// stateFile is the local backend's state file in the module directory.
const stateFile = "terraform.tfstate"

// cleanupTimeout bounds reading the state after a cancelled build.
const cleanupTimeout = 30 * time.Second

// Build runs terraform for req: init, then apply (start, stop) or destroy
// (delete). When ctx is cancelled terraform gets SIGINT, then is killed
// after Options.InterruptGrace; the error then matches ctx.Err() with
// errors.Is. A terraform failure is a *TerraformError. The result holds
// whatever state terraform left, even with an error.
func (r *Runner) Build(ctx context.Context, req BuildRequest) (BuildResult, error) {
	res := BuildResult{State: req.State}
	switch req.Transition {
	case TransitionStart, TransitionStop, TransitionDelete:
	default:
		return res, fmt.Errorf("%w: %q", ErrBadTransition, req.Transition)
	}
	sink := newLogSink(req.Log)
	sink.begin(StageSetup)
	w, err := r.newWorkdir(req.Archive)
	if err != nil {
		return res, err
	}
	defer w.remove()
	if len(req.State) > 0 {
		if err := os.WriteFile(filepath.Join(w.module, stateFile), req.State, 0o600); err != nil {
			return res, fmt.Errorf("provision: %w", err)
		}
	}
	err = r.runBuild(ctx, w, req, sink)
	// Read what terraform left, even after a failure or cancellation.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if rerr := r.readResult(rctx, w, sink, &res); rerr != nil {
		err = errors.Join(err, rerr)
	}
	if err != nil {
		sink.logf(LevelError, "build failed")
	}
	return res, err
}

// runBuild does the terraform part of Build.
func (r *Runner) runBuild(ctx context.Context, w *workdir, req BuildRequest, sink *logSink) error {
	mod, err := readModule(w.module)
	if err != nil {
		return err
	}
	vars, dropped, err := varFile(mod.Variables, req.Variables)
	if err != nil {
		return err
	}
	if len(dropped) > 0 {
		sink.logf(LevelWarn, fmt.Sprintf("ignoring values for variables the template does not declare: %v", dropped))
	}
	if err := os.WriteFile(w.vars, vars, 0o600); err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	extra := map[string]string{
		tfprovider.EnvURL:                 req.Workspace.AccessURL,
		tfprovider.EnvWorkspaceID:         req.Workspace.ID,
		tfprovider.EnvWorkspaceName:       req.Workspace.Name,
		tfprovider.EnvWorkspaceOwner:      req.Workspace.Owner,
		tfprovider.EnvWorkspaceTransition: string(req.Transition),
	}
	if req.Workspace.Fingerprint != "" {
		extra[certpin.EnvFingerprint] = req.Workspace.Fingerprint
	}
	if len(req.Parameters) > 0 {
		values, err := json.Marshal(req.Parameters)
		if err != nil {
			return fmt.Errorf("provision: parameters: %w", err)
		}
		extra[param.EnvValues] = string(values)
	}
	if req.RotateAgentTokens && req.Transition == TransitionStart {
		extra[tfprovider.EnvRotateAgentTokens] = "1"
	}
	env := r.env(w, extra)
	tf, stderr, err := r.terraform(w, env, sink)
	if err != nil {
		return err
	}
	defer stderr.Flush()
	if err := r.initModule(ctx, tf, sink); err != nil {
		if ctx.Err() != nil {
			killProcessGroup(w.tfPID)
		}
		return err
	}
	w.initialized = true
	stage := StageApply
	if req.Transition == TransitionDelete {
		stage = StageDestroy
	}
	sink.begin(stage)
	out := sink.writer(LevelInfo, true)
	if stage == StageDestroy {
		err = tf.DestroyJSON(ctx, out, tfexec.VarFile(w.vars))
	} else {
		err = tf.ApplyJSON(ctx, out, tfexec.VarFile(w.vars))
	}
	out.Flush()
	if ctx.Err() != nil {
		killProcessGroup(w.tfPID)
		sink.logf(LevelError, "build cancelled")
	}
	if err != nil {
		return &TerraformError{Stage: stage, Diagnostics: sink.errors(), Err: err}
	}
	return nil
}

// readResult fills res from the state file terraform left in w, if any.
func (r *Runner) readResult(ctx context.Context, w *workdir, sink *logSink, res *BuildResult) error {
	path := filepath.Join(w.module, stateFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("provision: read state: %w", err)
	}
	res.State = data
	if !w.initialized {
		return nil // the state is the prior one, and terraform cannot show it
	}
	st, err := parseStateFile(data)
	if errors.Is(err, errStateFormat) {
		// A format we do not read: terraform knows it.
		sink.logf(LevelDebug, fmt.Sprintf("reading the state with terraform show (%v)", err))
		st, err = r.showState(ctx, w, sink, path)
	}
	if err != nil {
		return err
	}
	res.Agents, res.Metadata, res.Resources, err = readState(st)
	return err
}

// showState reads the state file at path with `terraform show -json`.
func (r *Runner) showState(ctx context.Context, w *workdir, sink *logSink, path string) (*tfjson.State, error) {
	tf, _, err := r.terraform(w, r.env(w, nil), sink)
	if err != nil {
		return nil, err
	}
	st, err := tf.ShowStateFile(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("provision: terraform show: %w", err)
	}
	return st, nil
}
