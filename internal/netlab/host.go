//go:build linux

package netlab

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Host is a namespace with one address: a public host, a router, or a
// host on a LAN.
type Host struct {
	lab  *Lab
	NS   string     // the namespace's name
	Addr netip.Addr // eth0's address
}

// Command returns cmd to run name in the host's namespace (through `ip
// netns exec`, which execs it: the process's pid is name's own).
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
	cmd.Env = append(os.Environ(), h.lab.Env()...)
	return cmd
}

// Env returns the environment the lab adds to the processes it runs on
// the host (Lab.Env), for commands started some other way.
func (h *Host) Env() []string { return h.lab.Env() }

// Exec runs name in the namespace and returns its combined output,
// failing the test if it fails.
func (h *Host) Exec(name string, args ...string) string {
	h.lab.t.Helper()
	out, err := h.Try(name, args...)
	if err != nil {
		h.lab.t.Fatalf("netlab: %s: %s %s: %v\n%s", h.NS, name, strings.Join(args, " "), err, out)
	}
	return out
}

// Try runs name in the namespace and returns its combined output and
// error.
func (h *Host) Try(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := h.Command(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// EnvLogDir names a directory where a failed test's process logs are
// copied whole.
const EnvLogDir = "NETLAB_LOGDIR"

// Proc is a background process in a namespace, its output in a log
// file. The lab kills it when the test ends.
type Proc struct {
	Cmd  *exec.Cmd
	Log  string // path of the combined stdout and stderr
	done chan struct{}
	err  error // Wait's result, once done is closed
	once sync.Once
}

// Start starts name in the namespace with extra environment variables
// env, logging to a file named after it in dir. The test's cleanup kills
// it; a failed test gets the log's tail.
func (h *Host) Start(dir, logName string, env []string, name string, args ...string) *Proc {
	t := h.lab.t
	t.Helper()
	logPath := filepath.Join(dir, logName+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := h.Command(context.Background(), name, args...)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatalf("netlab: start %s in %s: %v", name, h.NS, err)
	}
	p := &Proc{Cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("netlab: log of %s in %s:\n%s", logName, h.NS, tail(logPath, 60))
			if dir := os.Getenv(EnvLogDir); dir != "" {
				b, _ := os.ReadFile(logPath)
				os.WriteFile(filepath.Join(dir, h.NS+"-"+logName+".log"), b, 0o600)
			}
		}
	})
	return p
}

// Kill kills the process (SIGKILL) and waits for it. It is idempotent.
func (p *Proc) Kill() {
	p.once.Do(func() { p.Cmd.Process.Signal(syscall.SIGKILL) })
	<-p.done
}

// Stop asks the process to end (SIGTERM) and waits up to 10 s before it
// kills it.
func (p *Proc) Stop() {
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
	p.Kill()
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Output returns what the process has logged so far.
func (p *Proc) Output() string {
	b, _ := os.ReadFile(p.Log)
	return string(b)
}

// WaitLog waits until the log contains s, or the process exits, or d
// passes.
func (p *Proc) WaitLog(s string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		if strings.Contains(p.Output(), s) {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited (%v) before logging %q", p.err, s)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %q in the log after %s", s, d)
		}
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// Capture runs tcpdump on the host's eth0 for packets matching filter,
// writing them to a pcap file in dir, until the test ends. It returns the
// file's path ("" when tcpdump is missing: captures are for diagnosis
// only).
func (h *Host) Capture(dir, name, filter string) string {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		h.lab.t.Logf("netlab: no capture on %s: tcpdump is missing (apt-get install tcpdump)", h.NS)
		return ""
	}
	path := filepath.Join(dir, name+".pcap")
	p := h.Start(dir, name+"-tcpdump", nil, "tcpdump", "-i", "eth0", "-n", "-U", "-s", "128", "-w", path, filter)
	// tcpdump prints "listening on" once it captures.
	if err := p.WaitLog("listening on", 10*time.Second); err != nil {
		h.lab.t.Logf("netlab: tcpdump on %s: %v", h.NS, err)
	}
	return path
}
