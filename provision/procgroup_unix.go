//go:build unix

package provision

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// killProcessGroup kills what is left of the process group whose leader's
// pid is in pidFile. terraform-exec starts terraform as a process group
// leader, and terraform's provisioner commands inherit the group; after a
// cancelled build terraform kills only the shell of a local-exec, so
// whatever that shell started (say, a `sleep`) would live on.
func killProcessGroup(pidFile string) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}
