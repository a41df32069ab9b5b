package sshd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"strings"
)

// account is the OS user that sessions run as: the agent process's own user.
type account struct {
	name  string
	uid   string
	home  string
	shell string
}

// currentAccount describes the user running this process. The shell comes
// from /etc/passwd because os/user does not expose it.
func currentAccount() (account, error) {
	u, err := user.Current()
	if err != nil {
		return account{}, fmt.Errorf("look up current user: %w", err)
	}
	a := account{name: u.Username, uid: u.Uid, home: u.HomeDir}
	if a.home == "" {
		a.home = os.Getenv("HOME")
	}
	if f, err := os.Open("/etc/passwd"); err == nil {
		a.shell = passwdShell(f, u.Uid)
		f.Close()
	}
	return a, nil
}

// passwdShell returns the login shell of uid from a passwd(5) file, or "".
func passwdShell(r io.Reader, uid string) string {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) == 7 && f[2] == uid {
			return f[6]
		}
	}
	return ""
}

// workDir returns the first of dirs that is an existing directory, or "/".
// A workspace's directory may not exist yet (or any more); OpenSSH likewise
// falls back to "/" when it cannot enter the home directory.
func workDir(dirs ...string) string {
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d
		}
	}
	return "/"
}

// connEnv describes the connection the way OpenSSH does, for scripts that
// look at SSH_CLIENT or SSH_CONNECTION to detect a remote session.
func connEnv(remote, local net.Addr) []string {
	rh, rp, err1 := net.SplitHostPort(remote.String())
	lh, lp, err2 := net.SplitHostPort(local.String())
	if err := errors.Join(err1, err2); err != nil {
		return nil
	}
	return []string{
		"SSH_CLIENT=" + rh + " " + rp + " " + lp,
		"SSH_CONNECTION=" + rh + " " + rp + " " + lh + " " + lp,
	}
}

// mergeEnv concatenates environment layers. A later layer overrides an
// earlier one key by key; a key keeps the position where it first appeared.
// Entries without "=" are dropped.
func mergeEnv(layers ...[]string) []string {
	index := map[string]int{}
	var out []string
	for _, layer := range layers {
		for _, kv := range layer {
			k, _, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				continue
			}
			if i, seen := index[k]; seen {
				out[i] = kv
				continue
			}
			index[k] = len(out)
			out = append(out, kv)
		}
	}
	return out
}
