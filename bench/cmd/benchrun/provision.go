package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/provision"
	"github.com/devmesh/devmesh/provision/tfprovider"
)

// localTemplate is the template the provisioning rows build, relative to
// the repository root (where make bench runs).
const localTemplate = "examples/templates/local"

// benchProvision measures a `local` template workspace's start build,
// from queued to finished (queue, terraform init and apply, reading the
// state, storing it), against a bare `terraform init &&
// terraform apply` of the same template with the same provider, in the
// same run. Runs alternate; each figure is the median.
func benchProvision(ctx context.Context, o options, r *report) error {
	if _, err := exec.LookPath("terraform"); err != nil {
		return fmt.Errorf("no terraform on PATH")
	}
	bin, err := filepath.Abs(o.devmesh)
	if err != nil {
		return err
	}
	tmpl, err := filepath.Abs(localTemplate)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "devmesh-bench-prov-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := startDevmeshWith(ctx, bin, dir, false, "--disable-stun")
	if err != nil {
		return err
	}
	defer srv.stop()
	w := &workspace{srv: srv, dir: dir, bin: bin, env: append(os.Environ(), "DEVMESH_CONFIG_DIR="+filepath.Join(dir, "cli"))}
	if _, err := w.cli(ctx, benchPassword+"\n", "login", srv.url, "--username", "bench", "--password-stdin"); err != nil {
		return err
	}
	if _, err := w.cli(ctx, "", "templates", "push", "local", "-d", tmpl); err != nil {
		return err
	}
	wsDir := filepath.Join(dir, "workspaces")
	runs := 5
	if o.short {
		runs = 3
	}
	var dm, ready, tf []time.Duration
	for i := 0; i < runs; i++ {
		name := fmt.Sprintf("prov%d", i)
		t0 := time.Now()
		out, err := w.cli(ctx, "", "create", name, "--template", "local", "--var", "workspaces_dir="+wsDir, "-o", "json")
		if err != nil {
			return err
		}
		ready = append(ready, time.Since(t0))
		var created client.CreatedWorkspace
		if err := json.Unmarshal([]byte(out), &created); err != nil || created.Build == nil || created.Build.FinishedAt.IsZero() {
			return fmt.Errorf("devmesh create -o json: no finished build in %q (%v)", out, err)
		}
		dm = append(dm, created.Build.FinishedAt.Sub(created.Build.CreatedAt))
		if _, err := w.cli(ctx, "", "delete", name, "--yes"); err != nil {
			return err
		}
		d, err := bareTerraform(ctx, bin, tmpl, filepath.Join(dir, fmt.Sprintf("bare%d", i)), srv.url, wsDir)
		if err != nil {
			return fmt.Errorf("bare terraform: %w", err)
		}
		tf = append(tf, d)
	}
	r.add(figure{Name: "provisioning: `local` template start build", Value: ms(median(dm)), Baseline: ms(median(tf)),
		Against: "bare `terraform init && terraform apply` of the same template, same run", Unit: "ms", Better: "lower",
		Note: fmt.Sprintf("median of %d; devmesh: the build from queued to finished (terraform, state, store); "+
			"`devmesh create` until the agent is connected: %d ms; goal <= 1.1x", runs, int(ms(median(ready))))})
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(a, b int) bool { return s[a] < s[b] })
	return s[len(s)/2]
}

// bareTerraform copies the template to dir, installs the devmesh provider
// as the coordinator's provisioner does, and times `terraform init` plus
// `terraform apply`; then destroys what it made (not timed).
func bareTerraform(ctx context.Context, bin, tmpl, dir, url, wsDir string) (time.Duration, error) {
	module, mirror := filepath.Join(dir, "template"), filepath.Join(dir, "mirror")
	if err := os.CopyFS(module, os.DirFS(tmpl)); err != nil {
		return 0, err
	}
	m := tfprovider.Mirror{Dir: mirror, DevmeshBinary: bin, Version: tfprovider.Version}
	if err := m.Install(); err != nil {
		return 0, err
	}
	env := append(os.Environ(), "TF_CLI_CONFIG_FILE="+tfprovider.CLIConfigFile(mirror), "CHECKPOINT_DISABLE=1",
		tfprovider.EnvBinary+"="+bin, tfprovider.EnvURL+"="+url, tfprovider.EnvWorkspaceID+"="+rand.Text()[:8],
		tfprovider.EnvWorkspaceName+"=bare", tfprovider.EnvWorkspaceOwner+"=bench",
		tfprovider.EnvWorkspaceTransition+"="+string(provision.TransitionStart))
	run := func(args ...string) error {
		c := exec.CommandContext(ctx, "terraform", args...)
		c.Dir, c.Env = module, env
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("terraform %s: %v: %s", args[0], err, lastLines(out))
		}
		return nil
	}
	v := "-var=workspaces_dir=" + wsDir
	t0 := time.Now()
	if err := run("init", "-input=false"); err != nil {
		return 0, err
	}
	if err := run("apply", "-auto-approve", "-input=false", v); err != nil {
		return 0, err
	}
	d := time.Since(t0)
	// The agent it started cannot log in (its token is not the
	// coordinator's); destroying stops it.
	env = append(env, tfprovider.EnvWorkspaceTransition+"="+string(provision.TransitionDelete))
	return d, run("destroy", "-auto-approve", "-input=false", v)
}
