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
	token string   // the agent's token
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
	w.token = strings.TrimSpace(lines[len(lines)-1])
	if err := w.startAgent(ctx); err != nil {
		return nil, err
	}
	ok = true
	return w, nil
}

// startAgent starts the workspace's agent with extraEnv added to its
// environment and waits until devmesh ssh reaches it.
func (w *workspace) startAgent(ctx context.Context, extraEnv ...string) error {
	logf, err := os.OpenFile(filepath.Join(w.dir, "agent.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	w.agent = exec.Command(w.bin, "agent", "--state-dir", filepath.Join(w.dir, "agent"))
	// The token goes through the environment, never the arguments.
	w.agent.Env = append(append(os.Environ(), "DEVMESH_URL="+w.srv.url, "DEVMESH_AGENT_TOKEN="+w.token), extraEnv...)
	w.agent.Stdout, w.agent.Stderr = logf, logf
	if err := w.agent.Start(); err != nil {
		logf.Close()
		return err
	}
	done := make(chan struct{})
	w.done = done
	go func() { w.agent.Wait(); logf.Close(); close(done) }()
	deadline := time.Now().Add(90 * time.Second)
	for {
		_, err := w.cli(ctx, "", "ssh", "box", "--", "true")
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("workspace not reachable after 90s (agent log %s): %w", logf.Name(), err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// stopAgent stops the agent, if it runs.
func (w *workspace) stopAgent() {
	if w.agent == nil || w.agent.Process == nil {
		return
	}
	w.agent.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(10 * time.Second):
		w.agent.Process.Kill()
		<-w.done
	}
	w.agent = nil
}

func (w *workspace) stop() {
	w.stopAgent()
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
