//go:build unix

package main

import (
	"bufio"
	"io"
	"strings"
	"testing"

	"github.com/creack/pty"
	"github.com/spf13/cobra"

	"github.com/devmesh/devmesh/tunnel"
)

// TestAskToStart: on a terminal a stopped workspace is started after a
// yes, refused after anything else; --start never asks; without a
// terminal the refusal names the command.
func TestAskToStart(t *testing.T) {
	target := tunnel.Target{Workspace: "dev"}
	ask := func(answer string, start bool) (string, error) {
		t.Helper()
		ptmx, tty, err := pty.Open()
		if err != nil {
			t.Skipf("no pseudo-terminal: %v", err)
		}
		defer ptmx.Close()
		defer tty.Close()
		cmd := &cobra.Command{}
		cmd.SetIn(tty)
		cmd.SetErr(tty)
		if answer != "" {
			io.WriteString(ptmx, answer+"\n")
		}
		err = askToStart(cmd, target, start, true)
		tty.Close()
		out, _ := io.ReadAll(bufio.NewReader(ptmx)) // EIO once the tty side is closed
		return string(out), err
	}
	out, err := ask("y", false)
	if err != nil || !strings.Contains(out, "Workspace dev is stopped. Start it? [y/N]") {
		t.Fatalf("yes on a terminal: %v, terminal shows %q", err, out)
	}
	if _, err := ask("n", false); err == nil || !strings.Contains(err.Error(), "devmesh ssh --start dev") {
		t.Fatalf("no on a terminal: %v", err)
	}
	if out, err := ask("", true); err != nil || strings.Contains(out, "Start it?") {
		t.Fatalf("--start asked or failed: %v, %q", err, out)
	}

	cmd := &cobra.Command{}
	cmd.SetIn(strings.NewReader("y\n"))
	err = askToStart(cmd, target, false, true)
	if err == nil || !strings.Contains(err.Error(), "workspace dev is stopped: start it with `devmesh start dev`, or connect with `devmesh ssh --start dev`") {
		t.Fatalf("without a terminal: %v", err)
	}
}
