//go:build unix

package sshd

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func TestMergeEnv(t *testing.T) {
	tests := []struct {
		name   string
		layers [][]string
		want   []string
	}{
		{"later layer wins in place",
			[][]string{{"A=1", "B=2"}, {"C=3", "A=9"}},
			[]string{"A=9", "B=2", "C=3"}},
		{"malformed entries dropped",
			[][]string{{"A=1", "junk", "=x"}, {"B="}},
			[]string{"A=1", "B="}},
		{"values may contain =",
			[][]string{{"A=x=y"}},
			[]string{"A=x=y"}},
		{"nothing", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mergeEnv(tt.layers...); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPasswdShell(t *testing.T) {
	passwd := "root:x:0:0:root:/root:/bin/bash\n" +
		"broken line\n" +
		"dev:x:1000:1000:Dev,,,:/home/dev:/usr/bin/zsh\n"
	for uid, want := range map[string]string{"0": "/bin/bash", "1000": "/usr/bin/zsh", "42": ""} {
		if got := passwdShell(strings.NewReader(passwd), uid); got != want {
			t.Errorf("uid %s: got %q, want %q", uid, got, want)
		}
	}
}

func TestChooseShellAndWorkDir(t *testing.T) {
	if got := chooseShell("", "/nonexistent/shell"); got != "/bin/sh" {
		t.Errorf("missing login shell: got %q, want /bin/sh", got)
	}
	if got := chooseShell("", "/bin/false"); got != "/bin/sh" {
		t.Errorf("false as login shell: got %q, want /bin/sh", got)
	}
	if got := chooseShell("", ""); got != "/bin/sh" {
		t.Errorf("no login shell: got %q, want /bin/sh", got)
	}
	login := filepath.Join(t.TempDir(), "myshell")
	if err := os.WriteFile(login, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := chooseShell("", login); got != login {
		t.Errorf("existing login shell: got %q, want %q", got, login)
	}
	if got := chooseShell("/bin/custom", "/bin/bash"); got != "/bin/custom" {
		t.Errorf("configured shell ignored: got %q", got)
	}
	dir := t.TempDir()
	if got := workDir("/nonexistent", "", dir); got != dir {
		t.Errorf("workDir = %q, want the first existing %q", got, dir)
	}
	if got := workDir("/nonexistent"); got != "/" {
		t.Errorf("workDir with none existing = %q, want /", got)
	}
}

func TestConnEnv(t *testing.T) {
	remote := &net.TCPAddr{IP: net.ParseIP("100.64.0.2"), Port: 51000}
	local := &net.TCPAddr{IP: net.ParseIP("100.64.0.1"), Port: 22}
	want := []string{"SSH_CLIENT=100.64.0.2 51000 22", "SSH_CONNECTION=100.64.0.2 51000 100.64.0.1 22"}
	if got := connEnv(remote, local); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSignalName(t *testing.T) {
	for sig, want := range map[syscall.Signal]string{
		syscall.SIGTERM:  "TERM",
		syscall.SIGKILL:  "KILL",
		syscall.SIGWINCH: "WINCH@openssh.com",
	} {
		if got := signalName(sig); got != want {
			t.Errorf("signalName(%v) = %q, want %q", sig, got, want)
		}
	}
}
