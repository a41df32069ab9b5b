package agent

import (
	"context"
	"os/exec"

	"github.com/devmesh/devmesh/agent/sshd"
)

// scriptCommand runs a startup script with Windows PowerShell.
func scriptCommand(ctx context.Context, text string) *exec.Cmd {
	return exec.CommandContext(ctx, "powershell.exe", "-NoLogo", "-NoProfile", "-NonInteractive",
		"-EncodedCommand", sshd.EncodePowerShell(text))
}
