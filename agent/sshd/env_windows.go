package sshd

import (
	"encoding/base64"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"unicode/utf16"
)

// chooseShell picks the session shell on Windows: the configured one, else
// Windows PowerShell, else cmd.exe (%ComSpec%). The login shell from
// /etc/passwd does not exist there.
func chooseShell(configured, _ string) string {
	if configured != "" {
		return configured
	}
	if p, err := exec.LookPath("powershell.exe"); err == nil {
		return p
	}
	if c := os.Getenv("ComSpec"); c != "" {
		return c
	}
	return "cmd.exe"
}

// windowsEnv are the variables of the agent's own environment that
// sessions inherit on Windows: without them PowerShell, cmd.exe and most
// programs do not work. Everything else (the agent token among it) stays
// out.
var windowsEnv = []string{
	"ALLUSERSPROFILE", "APPDATA", "CommonProgramFiles", "CommonProgramFiles(x86)",
	"CommonProgramW6432", "COMPUTERNAME", "ComSpec", "HOMEDRIVE", "HOMEPATH",
	"LOCALAPPDATA", "NUMBER_OF_PROCESSORS", "OS", "PATHEXT", "PROCESSOR_ARCHITECTURE",
	"PROCESSOR_IDENTIFIER", "PROCESSOR_LEVEL", "PROCESSOR_REVISION", "ProgramData",
	"ProgramFiles", "ProgramFiles(x86)", "ProgramW6432", "PSModulePath", "PUBLIC",
	"SystemDrive", "SystemRoot", "TEMP", "TMP", "USERDOMAIN", "USERNAME",
	"USERPROFILE", "windir",
}

// baseEnv is the environment every session starts from on Windows.
func baseEnv(a account, shell, path string) []string {
	var env []string
	for _, k := range windowsEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env,
		"HOME="+a.home,
		"USER="+a.name,
		"SHELL="+shell,
		"Path="+path,
	)
}

// shellKind classifies a Windows shell by its file name.
func shellKind(shell string) string {
	switch strings.ToLower(strings.TrimSuffix(strings.ToLower(filepath.Base(shell)), ".exe")) {
	case "powershell", "pwsh":
		return "powershell"
	case "cmd":
		return "cmd"
	}
	return "posix"
}

// shellCommand runs cmdline through shell, or shell interactively:
//   - PowerShell (powershell.exe, pwsh.exe): -EncodedCommand, so no quoting
//     of the command line can go wrong; the exit status is the script's.
//   - cmd.exe: /d /s /c "CMDLINE", cmd's own rule for a verbatim line.
//   - anything else (Git's bash.exe, busybox sh): -c CMDLINE, -l to log in.
func shellCommand(shell string, login bool, cmdline string) *exec.Cmd {
	cmd := exec.Command(shell)
	switch shellKind(shell) {
	case "powershell":
		cmd.Args = append(cmd.Args, "-NoLogo")
		if !login {
			cmd.Args = append(cmd.Args, "-NonInteractive", "-EncodedCommand", EncodePowerShell(cmdline))
		}
	case "cmd":
		if !login {
			cmd.SysProcAttr = &syscall.SysProcAttr{
				CmdLine: syscall.EscapeArg(shell) + ` /d /s /c "` + cmdline + `"`,
			}
		}
	default:
		if login {
			cmd.Args = append(cmd.Args, "-l")
		} else {
			cmd.Args = append(cmd.Args, "-c", cmdline)
		}
	}
	return cmd
}

// EncodePowerShell encodes a script for -EncodedCommand: base64 of UTF-16LE.
func EncodePowerShell(script string) string {
	u := utf16.Encode([]rune(script))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return base64.StdEncoding.EncodeToString(b)
}
