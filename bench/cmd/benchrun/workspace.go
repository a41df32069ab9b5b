package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// workspace is a coordinator, a logged-in CLI and an external workspace
// whose agent runs on this machine: what the data-plane rows measure.
type workspace struct {
	srv   *server
	dir   string
	bin   string
	env   []string // the CLI's environment (its own config directory)
	agent *exec.Cmd
	done  chan struct{}
}

const benchPassword = "bench-password-not-secret"

func startWorkspace(ctx context.Context, bin, dir string) (*workspace, error) {
	srv, err := startDevmesh(ctx, bin, dir, false)
	if err != nil {
		return nil, err
	}
	w := &workspace{srv: srv, dir: dir, bin: bin,
		env: append(os.Environ(), "DEVMESH_CONFIG_DIR="+filepath.Join(dir, "cli"))}
	ok := false
	defer func() {
		if !ok {
			w.stop()
		}
	}()
	if _, err := w.cli(ctx, benchPassword+"\n", "login", srv.url, "--username", "bench", "--password-stdin"); err != nil {
		return nil, err
	}
	out, err := w.cli(ctx, "", "create", "box", "--external")
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	token := strings.TrimSpace(lines[len(lines)-1])
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		return nil, err
	}
	w.agent = exec.Command(bin, "agent", "--state-dir", filepath.Join(dir, "agent"))
	// The token goes through the environment, never the arguments.
	w.agent.Env = append(os.Environ(), "DEVMESH_URL="+srv.url, "DEVMESH_AGENT_TOKEN="+token)
	w.agent.Stdout, w.agent.Stderr = logf, logf
	if err := w.agent.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	w.done = make(chan struct{})
	go func() { w.agent.Wait(); logf.Close(); close(w.done) }()
	deadline := time.Now().Add(90 * time.Second)
	for {
		_, err := w.cli(ctx, "", "ssh", "box", "--", "true")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("workspace not reachable after 90s (agent log %s): %w", logf.Name(), err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	ok = true
	return w, nil
}

func (w *workspace) stop() {
	if w.agent != nil && w.agent.Process != nil {
		w.agent.Process.Signal(syscall.SIGTERM)
		select {
		case <-w.done:
		case <-time.After(10 * time.Second):
			w.agent.Process.Kill()
			<-w.done
		}
	}
	w.srv.stop()
}

// cli runs the devmesh CLI with the workspace's configuration.
func (w *workspace) cli(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, w.bin, args...)
	cmd.Env = w.env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("devmesh %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// command returns an exec.Cmd for the devmesh CLI with the workspace's
// configuration, for callers that wire its streams themselves.
func (w *workspace) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, w.bin, args...)
	cmd.Env = w.env
	return cmd
}
