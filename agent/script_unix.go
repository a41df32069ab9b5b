//go:build unix

package agent

import (
	"context"
	"os/exec"
)

// scriptCommand runs a startup script with /bin/sh.
func scriptCommand(ctx context.Context, text string) *exec.Cmd {
	return exec.CommandContext(ctx, "/bin/sh", "-c", text)
}
