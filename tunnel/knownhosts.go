package tunnel

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/devmesh/devmesh/coordinator/client"
)

// KnownHostsName is the managed known_hosts file's name in the devmesh
// configuration directory.
const KnownHostsName = "known_hosts"

// HostKey is one known_hosts entry: an OpenSSH host name and its key.
type HostKey struct {
	Alias string
	Key   ssh.PublicKey
}

// WorkspaceHosts lists the OpenSSH host names of workspaces
// (devmesh.WS.AGENT for every agent, and devmesh.WS for a workspace with
// one agent) and the host keys their agents published.
func WorkspaceHosts(workspaces []client.Workspace) (aliases []string, keys []HostKey) {
	for _, ws := range workspaces {
		for _, a := range ws.Agents {
			names := []string{Target{ws.Name, a.Name}.Alias()}
			if len(ws.Agents) == 1 {
				names = append([]string{Target{Workspace: ws.Name}.Alias()}, names...)
			}
			aliases = append(aliases, names...)
			if a.SSHHostKey == "" {
				continue
			}
			k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(a.SSHHostKey))
			if err != nil {
				continue // not usable; the agent will publish again
			}
			for _, n := range names {
				keys = append(keys, HostKey{Alias: n, Key: k})
			}
		}
	}
	slices.Sort(aliases)
	slices.SortFunc(keys, func(a, b HostKey) int { return strings.Compare(a.Alias, b.Alias) })
	return aliases, keys
}

// FormatKnownHosts renders a known_hosts file: a header, then one line
// per entry.
func FormatKnownHosts(keys []HostKey) string {
	var b strings.Builder
	b.WriteString("# Managed by devmesh: host keys the coordinator published for your workspaces' agents.\n")
	b.WriteString("# Rewritten by `devmesh config-ssh`; edits are lost.\n")
	for _, k := range keys {
		b.WriteString(knownHostsLine(k))
	}
	return b.String()
}

func knownHostsLine(k HostKey) string {
	return k.Alias + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.Key))) + "\n"
}

// ParseKnownHosts returns the entries of a known_hosts file by host name;
// lines it cannot read are skipped.
func ParseKnownHosts(data []byte) map[string]ssh.PublicKey {
	out := map[string]ssh.PublicKey{}
	for len(data) > 0 {
		_, hosts, key, _, rest, err := ssh.ParseKnownHosts(data)
		if err != nil {
			// Skip the offending line and go on.
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				break
			}
			data = data[i+1:]
			continue
		}
		for _, h := range hosts {
			out[h] = key
		}
		data = rest
	}
	return out
}

// WriteKnownHosts replaces the file at path with keys (atomically, mode
// 0600).
func WriteKnownHosts(path string, keys []HostKey) error {
	return writeFileAtomic(path, []byte(FormatKnownHosts(keys)), 0o600)
}

// KnownHostResult says what EnsureKnownHost found.
type KnownHostResult int

const (
	// KnownHostUnmanaged: there is no managed file (config-ssh has not
	// run); nothing was written.
	KnownHostUnmanaged KnownHostResult = iota
	// KnownHostPresent: the file already has this key for the alias.
	KnownHostPresent
	// KnownHostAdded: the alias had no entry; this key was added.
	KnownHostAdded
	// KnownHostDiffers: the file has another key for the alias. It is
	// left alone: replacing a key takes an explicit `devmesh config-ssh`.
	KnownHostDiffers
)

// EnsureKnownHost adds alias's key to the managed file at path when the
// file has no entry for alias, so that a workspace created after the last
// config-ssh works at once. It never replaces a different key.
func EnsureKnownHost(path, alias string, key ssh.PublicKey) (KnownHostResult, error) {
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return 0, err
	}
	defer unlock()
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return KnownHostUnmanaged, nil
	}
	if err != nil {
		return 0, err
	}
	if have, ok := ParseKnownHosts(data)[alias]; ok {
		if bytes.Equal(have.Marshal(), key.Marshal()) {
			return KnownHostPresent, nil
		}
		return KnownHostDiffers, nil
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	data = append(data, knownHostsLine(HostKey{Alias: alias, Key: key})...)
	if err := writeFileAtomic(path, data, 0o600); err != nil {
		return 0, err
	}
	return KnownHostAdded, nil
}

// writeFileAtomic writes data to a temporary file beside path and renames
// it over path, so readers see the old or the new file, never a part.
// A symlink at path is followed: its target is replaced.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// WriteSSHConfig writes an ssh_config file atomically, keeping the mode of
// the file it replaces (0600 for a new one).
func WriteSSHConfig(path string, data []byte) error {
	perm := fs.FileMode(0o600)
	if fi, err := os.Stat(path); err == nil {
		perm = fi.Mode().Perm()
	}
	return writeFileAtomic(path, data, perm)
}
