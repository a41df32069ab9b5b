//go:build linux

package provision

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// startGroup starts `sleep 60` as a process group leader in dir.
func startGroup(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// TestCleanWorkRoot: a build directory left by a dead coordinator goes,
// with the terraform still running in it; a pid file naming some other
// process (its pid reused) kills nothing.
func TestCleanWorkRoot(t *testing.T) {
	root := t.TempDir()
	r := &Runner{opts: Options{WorkRoot: root}}
	mk := func(name string) string {
		module := filepath.Join(root, name, "template")
		if err := os.MkdirAll(module, 0o700); err != nil {
			t.Fatal(err)
		}
		return module
	}
	orphan := startGroup(t, mk("build-1"))
	os.WriteFile(filepath.Join(root, "build-1", "terraform.pid"), []byte(strconv.Itoa(orphan.Process.Pid)+"\n"), 0o600)
	mk("build-2")
	other := startGroup(t, t.TempDir())
	os.WriteFile(filepath.Join(root, "build-2", "terraform.pid"), []byte(strconv.Itoa(other.Process.Pid)), 0o600)
	os.Mkdir(filepath.Join(root, "keep"), 0o700)

	n, err := r.CleanWorkRoot()
	if err != nil || n != 2 {
		t.Fatalf("CleanWorkRoot = %d, %v; want 2", n, err)
	}
	done := make(chan error, 1)
	go func() { done <- orphan.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the orphaned terraform was not killed")
	}
	if err := other.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("an unrelated process was killed: %v", err)
	}
	ents, _ := os.ReadDir(root)
	if len(ents) != 1 || ents[0].Name() != "keep" {
		t.Errorf("left in the work root: %v", ents)
	}
	if n, err := (&Runner{opts: Options{WorkRoot: filepath.Join(root, "missing")}}).CleanWorkRoot(); n != 0 || err != nil {
		t.Errorf("missing work root: %d, %v", n, err)
	}
}
