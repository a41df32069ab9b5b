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

// HostKey is one known_hosts entry: an OpenSSH host name and its key,
// and the agent that published it (its UUID, kept in the entry's comment
// as "devmesh-agent=UUID"; empty for entries of older devmesh versions).
type HostKey struct {
	Alias string
	Key   ssh.PublicKey
	Agent string
}

// agentComment prefixes the agent UUID in an entry's comment.
const agentComment = "devmesh-agent="

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
				keys = append(keys, HostKey{Alias: n, Key: k, Agent: a.UUID})
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
	line := k.Alias + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.Key)))
	if k.Agent != "" && !strings.ContainsAny(k.Agent, " \t\r\n") {
		line += " " + agentComment + k.Agent
	}
	return line + "\n"
}

// ParseKnownHosts returns the entries of a known_hosts file by host name;
// lines it cannot read are skipped.
func ParseKnownHosts(data []byte) map[string]ssh.PublicKey {
	out := map[string]ssh.PublicKey{}
	for alias, k := range parseKnownHostEntries(data) {
		out[alias] = k.Key
	}
	return out
}

// parseKnownHostEntries returns the entries of a known_hosts file by host
// name, with the agent each names; lines it cannot read are skipped.
func parseKnownHostEntries(data []byte) map[string]HostKey {
	out := map[string]HostKey{}
	for len(data) > 0 {
		marker, hosts, key, comment, rest, err := ssh.ParseKnownHosts(data)
		if err != nil {
			// Skip the offending line and go on.
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				break
			}
			data = data[i+1:]
			continue
		}
		if marker != "" { // @revoked, @cert-authority: not a host's key
			data = rest
			continue
		}
		agent, _ := strings.CutPrefix(comment, agentComment)
		if agent == comment {
			agent = ""
		}
		for _, h := range hosts {
			out[h] = HostKey{Alias: h, Key: key, Agent: agent}
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
	// KnownHostDiffers: the file has another key for the alias, of the
	// same agent (or of an agent it cannot tell). It is left alone:
	// replacing a key takes an explicit `devmesh config-ssh`.
	KnownHostDiffers
	// KnownHostReplaced: the file had another key for the alias, of
	// another agent: the workspace was rebuilt, or deleted and created
	// again. The new agent's key replaced it.
	KnownHostReplaced
)

// EnsureKnownHost keeps alias's entry in the managed file at path current
// with key, published by the agent with UUID agent: it adds it when the
// file has no entry for alias, so that a workspace created after the last
// config-ssh works at once, and replaces an entry another agent published
// (a workspace devmesh rebuilt or replaced), so that OpenSSH does not take
// it for an impostor. It never replaces a different key of the same
// agent, or of an agent it cannot tell.
func EnsureKnownHost(path, alias string, key ssh.PublicKey, agent string) (KnownHostResult, error) {
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
	entry := HostKey{Alias: alias, Key: key, Agent: agent}
	if have, ok := parseKnownHostEntries(data)[alias]; ok {
		switch {
		case bytes.Equal(have.Key.Marshal(), key.Marshal()):
			return KnownHostPresent, nil
		case have.Agent == "" || agent == "" || have.Agent == agent:
			return KnownHostDiffers, nil
		}
		data = removeHosts(data, func(h string) bool { return h == alias })
		data = append(data, knownHostsLine(entry)...)
		if err := writeFileAtomic(path, data, 0o600); err != nil {
			return 0, err
		}
		return KnownHostReplaced, nil
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	data = append(data, knownHostsLine(entry)...)
	if err := writeFileAtomic(path, data, 0o600); err != nil {
		return 0, err
	}
	return KnownHostAdded, nil
}

// ForgetWorkspace removes the entries of workspace ws (devmesh.WS and
// devmesh.WS.AGENT) from the managed file at path, once devmesh has
// deleted the workspace: a new workspace of that name will have new host
// keys. It returns how many entries went; no file is no error.
func ForgetWorkspace(path string, ws string) (int, error) {
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return 0, err
	}
	defer unlock()
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	alias := Target{Workspace: ws}.Alias()
	n := 0
	kept := removeHosts(data, func(h string) bool {
		if h == alias || strings.HasPrefix(h, alias+".") {
			n++
			return true
		}
		return false
	})
	if n == 0 {
		return 0, nil
	}
	return n, writeFileAtomic(path, kept, 0o600)
}

// removeHosts returns the lines of a known_hosts file without those whose
// only host name drop reports true for (devmesh writes one name a line);
// every other line is kept as it is. The result ends in a newline.
func removeHosts(data []byte, drop func(host string) bool) []byte {
	var out []byte
	for line := range bytes.Lines(data) {
		fields := strings.Fields(string(line))
		if len(fields) >= 2 && !strings.HasPrefix(fields[0], "#") && !strings.Contains(fields[0], ",") && drop(fields[0]) {
			continue
		}
		out = append(out, line...)
		if out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
	}
	return out
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
