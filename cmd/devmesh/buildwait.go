package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/devmesh/devmesh/coordinator/client"
)

// buildWaiter follows builds of one workspace for a command: it prints the
// log as it comes (to stderr: it is progress), says how the build ended,
// and turns a failure into a non-zero exit. Interrupting it (Ctrl-C) asks,
// on a terminal, whether to cancel the build.
type buildWaiter struct {
	c           *client.Client
	ws          string
	out, errOut io.Writer
	in          *bufio.Reader
	interactive bool // stdin and stderr are a terminal: Ctrl-C asks
}

func newBuildWaiter(cmd *cobra.Command, c *client.Client, ws string) *buildWaiter {
	in := cmd.InOrStdin()
	f, ok := in.(*os.File)
	return &buildWaiter{c: c, ws: ws, out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr(), in: bufio.NewReader(in),
		interactive: ok && term.IsTerminal(int(f.Fd())) && isTerminal(cmd.ErrOrStderr())}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// queued reports a build just queued, and waits for it unless noWait.
func (bw *buildWaiter) queued(ctx context.Context, b client.Build, noWait bool) error {
	fmt.Fprintf(bw.errOut, "Queued build #%d (%s) of %s.\n", b.Number, b.Transition, bw.ws)
	if noWait {
		_, err := fmt.Fprintf(bw.out, "Build #%d (%s) of %s is %s; follow it with: devmesh builds %s --follow %d\n",
			b.Number, b.Transition, bw.ws, b.Status, bw.ws, b.Number)
		return err
	}
	return bw.wait(ctx, b)
}

// wait follows build b until it ends and reports how it ended: nil if it
// succeeded, an error saying why otherwise.
func (bw *buildWaiter) wait(ctx context.Context, b client.Build) error {
	var after int64
	stage := ""
	print := func(l client.BuildLog) {
		after = l.ID
		if h := stageHeader(l.Stage); h != "" && l.Stage != stage {
			fmt.Fprintf(bw.errOut, "==> %s\n", h)
		}
		stage = l.Stage
		fmt.Fprintln(bw.errOut, l.Output)
	}
	for {
		done, err := bw.c.FollowBuild(ctx, bw.ws, b.Number, after, print)
		if err == nil {
			return bw.report(done)
		}
		if ctx.Err() == nil {
			return err
		}
		// Interrupted (Ctrl-C): ask whether to cancel the build.
		if !bw.interactive || !bw.confirm(fmt.Sprintf("\nCancel build #%d (%s) of %s? [y/N] ", b.Number, b.Transition, bw.ws)) {
			return fmt.Errorf("stopped following; build #%d of %s goes on (devmesh builds %s --follow %d; devmesh cancel %s)",
				b.Number, bw.ws, bw.ws, b.Number, bw.ws)
		}
		// Follow the cancellation through with a fresh context; a second
		// Ctrl-C stops following at once.
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(context.WithoutCancel(ctx), os.Interrupt)
		defer stop()
		if _, err := bw.c.CancelBuild(ctx, bw.ws, b.Number); err != nil && client.ErrorCode(err) != client.CodeBuildFinished {
			return fmt.Errorf("cancel build #%d: %w", b.Number, err)
		}
		fmt.Fprintf(bw.errOut, "Canceling build #%d; terraform is being interrupted...\n", b.Number)
	}
}

// confirm asks a yes/no question on stderr and reads the answer.
func (bw *buildWaiter) confirm(question string) bool {
	fmt.Fprint(bw.errOut, question)
	line, _ := bw.in.ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}

// report prints how a finished build ended; failures become errors.
func (bw *buildWaiter) report(b client.Build) error {
	took := ""
	if !b.StartedAt.IsZero() && !b.FinishedAt.IsZero() {
		took = " in " + b.FinishedAt.Sub(b.StartedAt).Round(100*time.Millisecond).String()
	}
	if b.Status == client.BuildSucceeded {
		what := map[string]string{client.TransitionStart: "started", client.TransitionStop: "stopped", client.TransitionDelete: "deleted"}[b.Transition]
		_, err := fmt.Fprintf(bw.out, "Build #%d (%s) of %s succeeded%s: the workspace is %s.\n", b.Number, b.Transition, bw.ws, took, what)
		return err
	}
	msg := fmt.Sprintf("build #%d (%s) of %s %s", b.Number, b.Transition, bw.ws, b.Status)
	if b.Reason != "" {
		msg += ": " + b.Reason
	}
	if b.Status == client.BuildFailed {
		msg += " (the log above has terraform's output; `devmesh builds " + bw.ws + "` lists builds)"
	}
	return errors.New(msg)
}

// stageHeader names a stage of the build log for a header line.
func stageHeader(stage string) string {
	switch stage {
	case "init":
		return "terraform init"
	case "apply":
		return "terraform apply"
	case "destroy":
		return "terraform destroy"
	}
	return ""
}
