package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/devmesh/devmesh/coordinator/client"
)

// drainWait is how long the startup script's output is awaited after it
// exits; background processes it started may keep the pipes open, and
// their output keeps streaming after that.
const drainWait = time.Second

// runStartup reports lifecycle starting, runs the startup script with its
// output streamed as logs, and reports ready or start_error once the
// script's output is delivered. It returns when ctx ends or, if nothing
// the script started still writes output, once it is done.
func (a *Agent) runStartup(ctx context.Context, m client.AgentManifest, logs *logSender) {
	if !a.postLifecycle(ctx, client.LifecycleStarting) {
		return
	}
	if strings.TrimSpace(m.StartupScript) == "" {
		a.postLifecycle(ctx, client.LifecycleReady)
		return
	}
	start := time.Now()
	sc, err := startScript(ctx, m.StartupScript, m.Dir, scriptEnv(os.Environ(), m, a.opts.Token), logs)
	if err == nil {
		err = sc.wait()
	}
	if ctx.Err() != nil {
		sc.close()
		return
	}
	state := client.LifecycleReady
	if err != nil {
		state = client.LifecycleStartError
		logs.add(client.StreamStderr, "devmesh agent: startup script failed: "+err.Error())
		a.log.Warn("startup script failed", "err", err, "took", time.Since(start).Round(time.Millisecond))
	} else {
		a.log.Info("startup script done", "took", time.Since(start).Round(time.Millisecond))
	}
	logs.flush(ctx)
	a.postLifecycle(ctx, state)
	sc.close()
}

func (a *Agent) postLifecycle(ctx context.Context, state string) bool {
	err := retry(ctx, a, "report lifecycle "+state, func(ctx context.Context) error {
		return a.api.PostAgentLifecycle(ctx, state)
	})
	if err != nil && ctx.Err() == nil {
		a.log.Error("report lifecycle", "state", state, "err", err)
	}
	return err == nil
}

// script is a running startup script and the readers of its output.
type script struct {
	ctx     context.Context
	cmd     *exec.Cmd
	pipes   []*os.File    // read ends
	readers chan struct{} // one value per reader that reached EOF
	eof     int           // values taken from readers
}

// startScript starts the script text (`sh -c text`; on Windows a PowerShell
// script) with stdout and stderr streamed line by line to logs. Stdin is
// the null device.
func startScript(ctx context.Context, text, dir string, env []string, logs *logSender) (*script, error) {
	cmd := scriptCommand(ctx, text)
	cmd.Dir = scriptDir(dir)
	cmd.Env = env
	sc := &script{ctx: ctx, cmd: cmd, readers: make(chan struct{}, 2)}
	var writers []*os.File
	for _, stream := range []string{client.StreamStdout, client.StreamStderr} {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll(writers)
			sc.closePipes()
			return sc, err
		}
		sc.pipes, writers = append(sc.pipes, r), append(writers, w)
		go func() {
			readLines(r, func(line string) { logs.add(stream, line) })
			sc.readers <- struct{}{}
		}()
	}
	cmd.Stdout, cmd.Stderr = writers[0], writers[1]
	err := cmd.Start()
	closeAll(writers) // the child has its copies
	if err != nil {
		sc.closePipes()
		return sc, fmt.Errorf("start the startup script: %w", err)
	}
	return sc, nil
}

// wait waits for the script to exit and briefly for its output.
func (sc *script) wait() error {
	err := sc.cmd.Wait()
	t := time.NewTimer(drainWait)
	defer t.Stop()
	for sc.eof < len(sc.pipes) {
		select {
		case <-sc.readers:
			sc.eof++
		case <-t.C:
			return err
		}
	}
	return err
}

// close waits until the readers are done: at EOF, or when ctx ends
// (the pipes are then closed, as they would be if the agent exited).
func (sc *script) close() {
	for sc.eof < len(sc.pipes) {
		select {
		case <-sc.readers:
			sc.eof++
		case <-sc.ctx.Done():
			sc.closePipes()
			for ; sc.eof < len(sc.pipes); sc.eof++ {
				<-sc.readers
			}
		}
	}
}

func (sc *script) closePipes() { closeAll(sc.pipes) }

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// scriptDir is dir if it is a directory, else the home directory.
func scriptDir(dir string) string {
	if dir != "" {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return dir
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		return home
	}
	return "/"
}

// readLines calls emit for each line of r (without the line ending),
// splitting lines longer than client.MaxAgentLogLineBytes.
func readLines(r io.Reader, emit func(string)) {
	br := bufio.NewReaderSize(r, client.MaxAgentLogLineBytes)
	for {
		line, _, err := br.ReadLine()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				emit("devmesh agent: reading output: " + err.Error())
			}
			return
		}
		emit(clampLine(strings.TrimSuffix(string(line), "\r")))
	}
}

// clampLine makes s valid UTF-8 of at most MaxAgentLogLineBytes.
func clampLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= client.MaxAgentLogLineBytes {
		return s
	}
	cut := client.MaxAgentLogLineBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
