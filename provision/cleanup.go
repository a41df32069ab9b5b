package provision

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// MaxArchiveBytes returns the size limit on template archives.
func (r *Runner) MaxArchiveBytes() int64 { return r.opts.MaxArchiveBytes }

// TerraformPath returns the absolute path of the terraform (or tofu)
// executable the runner uses.
func (r *Runner) TerraformPath() string { return r.tfPath }

// CleanWorkRoot removes working directories left in WorkRoot by a process
// that died during a build or validation, first killing what is left of
// the terraform process group each one recorded. It returns how many
// directories it removed. Call it only when this runner has nothing
// running, such as at startup before any build.
func (r *Runner) CleanWorkRoot() (int, error) {
	ents, err := os.ReadDir(r.opts.WorkRoot)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("provision: clean work root: %w", err)
	}
	n := 0
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "build-") {
			continue
		}
		root := filepath.Join(r.opts.WorkRoot, e.Name())
		w := &workdir{root: root, module: filepath.Join(root, "template"), tfPID: filepath.Join(root, "terraform.pid")}
		if stale(w) {
			killProcessGroup(w.tfPID)
		}
		if err := os.RemoveAll(root); err != nil {
			return n, fmt.Errorf("provision: clean work root: %w", err)
		}
		n++
	}
	return n, nil
}

// stale reports whether killing the process group recorded in w is safe:
// the recorded terraform is either still running in w's module directory,
// or gone (then the group id cannot have been reused while any member of
// the group lives, so a kill reaches only leftovers of that group). Where
// there is no /proc to check, it trusts the pid file.
func stale(w *workdir) bool {
	b, err := os.ReadFile(w.tfPID)
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return false
	}
	if _, err := os.Stat("/proc/self"); err != nil {
		return true
	}
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if errors.Is(err, fs.ErrNotExist) {
		return true // no such process: only the group's leftovers remain
	}
	return err == nil && cwd == w.module
}
