//go:build unix

package sshd

import (
	"os"
	"os/exec"
	"path/filepath"
)

// defaultPath is the session PATH when the agent process has none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// chooseShell picks the session shell: the configured one, else the user's
// login shell if it exists, else /bin/sh. A nologin or false shell counts
// as none: an agent run as a service account is still meant to serve
// sessions.
func chooseShell(configured, login string) string {
	if configured != "" {
		return configured
	}
	switch filepath.Base(login) {
	case "nologin", "false", ".", "/":
		return "/bin/sh"
	}
	if _, err := os.Stat(login); err == nil {
		return login
	}
	return "/bin/sh"
}

// baseEnv is the environment every session starts from, before
// Options.Env and the client's env requests are layered on top.
func baseEnv(a account, shell, path string) []string {
	if path == "" {
		path = defaultPath
	}
	return []string{
		"HOME=" + a.home,
		"USER=" + a.name,
		"LOGNAME=" + a.name,
		"SHELL=" + shell,
		"PATH=" + path,
	}
}

// shellCommand runs cmdline with shell -c, or shell as a login shell.
// argv[0] is the shell's base name, as with OpenSSH; a leading "-" makes
// it a login shell.
func shellCommand(shell string, login bool, cmdline string) *exec.Cmd {
	cmd := exec.Command(shell, "-c", cmdline)
	cmd.Args[0] = filepath.Base(shell)
	if login {
		cmd.Args = []string{"-" + cmd.Args[0]}
	}
	return cmd
}
