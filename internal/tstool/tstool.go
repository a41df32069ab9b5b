// Package tstool finds (building if needed) the official tailscaled and
// tailscale binaries, at the tailscale.com version this module pins, for
// interop tests.
package tstool

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
)

var (
	once        sync.Once
	dir         string
	buildErr    error
	buildOutput []byte
)

// Version returns the pinned tailscale.com version.
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "tailscale.com" {
				return d.Version
			}
		}
	}
	return "v1.102.5"
}

// Binaries returns the paths of tailscaled and tailscale. It looks in
// $DEVMESH_TOOLS_DIR (set by `make test`), else builds them once into the
// user cache with `go install tailscale.com/cmd/...@<pinned version>`.
func Binaries(t testing.TB) (tailscaled, tailscale string) {
	t.Helper()
	once.Do(func() {
		dir = os.Getenv("DEVMESH_TOOLS_DIR")
		if dir != "" && exists(filepath.Join(dir, "tailscaled")) && exists(filepath.Join(dir, "tailscale")) {
			return
		}
		cache, err := os.UserCacheDir()
		if err != nil {
			buildErr = err
			return
		}
		dir = filepath.Join(cache, "devmesh-tools", Version())
		if exists(filepath.Join(dir, "tailscaled")) && exists(filepath.Join(dir, "tailscale")) {
			return
		}
		v := Version()
		cmd := exec.Command("go", "install", "tailscale.com/cmd/tailscaled@"+v, "tailscale.com/cmd/tailscale@"+v)
		cmd.Env = append(os.Environ(), "GOBIN="+dir)
		buildOutput, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("build official tailscale binaries: %v\n%s", buildErr, strings.TrimSpace(string(buildOutput)))
	}
	return filepath.Join(dir, "tailscaled"), filepath.Join(dir, "tailscale")
}

func exists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// Daemon is a running official tailscaled in userspace-networking mode.
type Daemon struct {
	Dir    string
	cli    string
	socket string
	cmd    *exec.Cmd
	logs   *os.File
}

// StartDaemon starts tailscaled with state in a temp dir, logging to a
// file, with log upload off. It is stopped when the test ends.
func StartDaemon(t testing.TB) *Daemon {
	t.Helper()
	tailscaled, cli := Binaries(t)
	d := &Daemon{Dir: t.TempDir(), cli: cli}
	d.socket = filepath.Join(d.Dir, "tailscaled.sock")
	logs, err := os.Create(filepath.Join(d.Dir, "tailscaled.log"))
	if err != nil {
		t.Fatal(err)
	}
	d.logs = logs
	d.cmd = exec.Command(tailscaled,
		"--tun=userspace-networking",
		"--statedir="+filepath.Join(d.Dir, "state"),
		"--socket="+d.socket,
		"--port=0",
		"--no-logs-no-support",
	)
	d.cmd.Env = append(os.Environ(), "TS_NO_LOGS_NO_SUPPORT=true", "TS_LOGS_DIR="+d.Dir)
	d.cmd.Stdout, d.cmd.Stderr = logs, logs
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start tailscaled: %v", err)
	}
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		d.cmd.Wait()
		logs.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logs.Name()); err == nil {
				t.Logf("tailscaled log (tail):\n%s", tail(string(b), 60))
			}
		}
	})
	return d
}

// Command returns a `tailscale --socket=... args...` command.
func (d *Daemon) Command(args ...string) *exec.Cmd {
	cmd := exec.Command(d.cli, append([]string{"--socket=" + d.socket}, args...)...)
	cmd.Env = append(os.Environ(), "TS_NO_LOGS_NO_SUPPORT=true")
	return cmd
}

// Run runs the tailscale CLI and returns its combined output.
func (d *Daemon) Run(args ...string) (string, error) {
	out, err := d.Command(args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("tailscale %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
