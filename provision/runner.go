package provision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-version"
	"github.com/hashicorp/terraform-exec/tfexec"

	"github.com/devmesh/devmesh/provision/tfprovider"
)

// Defaults for Options.
const (
	DefaultMaxArchiveBytes = 10 << 20
	DefaultInterruptGrace  = time.Minute
)

// minTerraform is the oldest terraform (or OpenTofu) we run.
var minTerraform = version.Must(version.NewVersion("1.5.0"))

// Options configure a Runner.
type Options struct {
	// TerraformPath is the terraform or tofu executable. Default:
	// "terraform" on PATH, else "tofu".
	TerraformPath string
	// WorkRoot holds the working directories of builds and validations,
	// one fresh directory (mode 0700) each, removed when it ends.
	// Required; created if missing.
	WorkRoot string
	// DevmeshBinary is the devmesh executable. Terraform runs it as the
	// provider plugin (`devmesh terraform-provider`), and templates whose
	// agents run on this host find it in $DEVMESH_BINARY. Required.
	DevmeshBinary string
	// Logger receives the runner's own diagnostics. Default: discard.
	Logger *slog.Logger
	// InterruptGrace is how long terraform may take to stop after a
	// build's context is cancelled (it gets SIGINT at once) before it is
	// killed. Default DefaultInterruptGrace.
	InterruptGrace time.Duration
	// MaxArchiveBytes limits template archives. Default
	// DefaultMaxArchiveBytes.
	MaxArchiveBytes int64
	// ProviderMirrors are filesystem mirrors holding other providers a
	// template may use; AllowProviderDownload lets terraform download them
	// from their registries. See tfprovider.Mirror.
	ProviderMirrors       []string
	AllowProviderDownload bool
}

// Runner runs terraform for template validation and workspace builds. It
// holds no state between calls; calls may run concurrently.
type Runner struct {
	opts   Options
	tfPath string
	log    *slog.Logger
}

// New checks opts and returns a Runner. It runs nothing: call
// CheckTerraform at startup to report a missing or old terraform early.
func New(opts Options) (*Runner, error) {
	if opts.WorkRoot == "" || opts.DevmeshBinary == "" {
		return nil, errors.New("provision: WorkRoot and DevmeshBinary are required")
	}
	var err error
	if opts.WorkRoot, err = filepath.Abs(opts.WorkRoot); err != nil {
		return nil, fmt.Errorf("provision: %w", err)
	}
	if opts.DevmeshBinary, err = filepath.Abs(opts.DevmeshBinary); err != nil {
		return nil, fmt.Errorf("provision: %w", err)
	}
	tfPath, err := findTerraform(opts.TerraformPath)
	if err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.InterruptGrace <= 0 {
		opts.InterruptGrace = DefaultInterruptGrace
	}
	if opts.MaxArchiveBytes <= 0 {
		opts.MaxArchiveBytes = DefaultMaxArchiveBytes
	}
	return &Runner{opts: opts, tfPath: tfPath, log: opts.Logger}, nil
}

// findTerraform resolves path, or finds terraform or tofu on PATH.
func findTerraform(path string) (string, error) {
	names := []string{"terraform", "tofu"}
	if path != "" {
		names = []string{path}
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return filepath.Abs(p)
		}
	}
	return "", fmt.Errorf("%w: looked for %s", ErrTerraformNotFound, strings.Join(names, ", "))
}

// CheckTerraform runs `path version` and returns the version, or an error
// wrapping ErrTerraformNotFound or ErrTerraformTooOld (older than 1.5).
// An empty path looks for terraform, then tofu, on PATH.
func CheckTerraform(ctx context.Context, path string) (string, error) {
	p, err := findTerraform(path)
	if err != nil {
		return "", err
	}
	tf, err := tfexec.NewTerraform(os.TempDir(), p)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrTerraformNotFound, err)
	}
	v, _, err := tf.Version(ctx, true)
	if err != nil {
		return "", fmt.Errorf("%w: %s version: %v", ErrTerraformNotFound, p, err)
	}
	if v.LessThan(minTerraform) {
		return v.String(), fmt.Errorf("%w: %s is %s, need %s or newer", ErrTerraformTooOld, p, v, minTerraform)
	}
	return v.String(), nil
}

// workdir is the directory of one build or validation.
type workdir struct {
	root   string // WorkRoot/build-*, removed at the end
	module string // root/template: the template, terraform's working directory
	mirror string // root/mirror: the provider mirror and CLI configuration
	vars   string // root/vars.tfvars.json
	tfExec string // root/terraform: runs terraform, recording its pid
	tfPID  string // root/terraform.pid: pid of the last terraform started

	initialized bool // terraform init succeeded in module
}

// newWorkdir validates and extracts archive into a fresh directory and
// installs the provider mirror beside it. The caller must call remove.
func (r *Runner) newWorkdir(archive []byte) (*workdir, error) {
	if err := Validate(archive, r.opts.MaxArchiveBytes); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(r.opts.WorkRoot, 0o700); err != nil {
		return nil, fmt.Errorf("provision: %w", err)
	}
	root, err := os.MkdirTemp(r.opts.WorkRoot, "build-*")
	if err != nil {
		return nil, fmt.Errorf("provision: %w", err)
	}
	w := &workdir{
		root:   root,
		module: filepath.Join(root, "template"),
		mirror: filepath.Join(root, "mirror"),
		vars:   filepath.Join(root, "vars.tfvars.json"),
		tfExec: filepath.Join(root, "terraform"),
		tfPID:  filepath.Join(root, "terraform.pid"),
	}
	if err := r.fillWorkdir(w, archive); err != nil {
		w.remove()
		return nil, err
	}
	return w, nil
}

func (r *Runner) fillWorkdir(w *workdir, archive []byte) error {
	if err := Extract(archive, w.module); err != nil {
		return err
	}
	// terraform-exec starts terraform in a process group of its own; this
	// wrapper records its pid (the exec keeps it), so that a cancelled build
	// can kill the group. See killProcessGroup.
	wrapper := "#!/bin/sh\necho $$ >" + shellQuote(w.tfPID) + "\nexec " + shellQuote(r.tfPath) + " \"$@\"\n"
	if err := os.WriteFile(w.tfExec, []byte(wrapper), 0o700); err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	m := tfprovider.Mirror{
		Dir:           w.mirror,
		DevmeshBinary: r.opts.DevmeshBinary,
		Version:       tfprovider.Version,
		ExtraMirrors:  r.opts.ProviderMirrors,
		AllowDownload: r.opts.AllowProviderDownload,
	}
	if err := m.Install(); err != nil {
		return err
	}
	entry, err := m.LockFileEntry()
	if err != nil {
		return err
	}
	if err := pinProvider(filepath.Join(w.module, lockFileName), entry); err != nil {
		return fmt.Errorf("provision: lock file: %w", err)
	}
	return nil
}

func (w *workdir) remove() { os.RemoveAll(w.root) }

// terraform returns a tfexec handle on w with env, streaming stderr to sink.
func (r *Runner) terraform(w *workdir, env map[string]string, sink *logSink) (*tfexec.Terraform, *lineWriter, error) {
	tf, err := tfexec.NewTerraform(w.module, w.tfExec)
	if err != nil {
		return nil, nil, fmt.Errorf("provision: %w", err)
	}
	if err := tf.SetEnv(env); err != nil {
		return nil, nil, fmt.Errorf("provision: %w", err)
	}
	if err := tf.SetWaitDelay(r.opts.InterruptGrace); err != nil {
		return nil, nil, fmt.Errorf("provision: %w", err)
	}
	stderr := sink.writer(LevelError, false)
	tf.SetStderr(stderr)
	return tf, stderr, nil
}

// shellQuote quotes s as one sh word.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// env returns terraform's environment: ours, less variables terraform-exec
// manages (TF_*, except TF_PLUGIN_CACHE_DIR) and our own configuration
// (DEVMESH_*, which may hold secrets such as a database URL), plus extra.
func (r *Runner) env(w *workdir, extra map[string]string) map[string]string {
	env := make(map[string]string)
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if (strings.HasPrefix(k, "TF_") && k != "TF_PLUGIN_CACHE_DIR") || strings.HasPrefix(k, "DEVMESH_") {
			continue
		}
		env[k] = v
	}
	env["TF_CLI_CONFIG_FILE"] = tfprovider.CLIConfigFile(w.mirror)
	env["CHECKPOINT_DISABLE"] = "1"
	env[tfprovider.EnvBinary] = r.opts.DevmeshBinary
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// initModule runs `terraform init`, streaming its text output to sink.
func (r *Runner) initModule(ctx context.Context, tf *tfexec.Terraform, sink *logSink, opts ...tfexec.InitOption) error {
	sink.begin(StageInit)
	out := sink.writer(LevelInfo, false)
	tf.SetStdout(out)
	err := tf.Init(ctx, opts...)
	tf.SetStdout(nil)
	out.Flush()
	if err != nil {
		return &TerraformError{Stage: StageInit, Err: err}
	}
	return nil
}
