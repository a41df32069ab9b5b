package tunnel

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/devmesh/devmesh/coordinator/client"
)

func TestWorkspaceHosts(t *testing.T) {
	k1, k2 := newTestKey(t), newTestKey(t)
	auth := func(k ssh.PublicKey) string { return string(ssh.MarshalAuthorizedKey(k)) }
	aliases, keys := WorkspaceHosts([]client.Workspace{
		{Name: "web", Agents: []client.Agent{{Name: "main", SSHHostKey: auth(k1)}}},
		{Name: "ml", Agents: []client.Agent{{Name: "gpu", SSHHostKey: auth(k2)}, {Name: "cpu"}}},
	})
	if want := []string{"devmesh.ml.cpu", "devmesh.ml.gpu", "devmesh.web", "devmesh.web.main"}; !slices.Equal(aliases, want) {
		t.Errorf("aliases = %q, want %q", aliases, want)
	}
	var got []string
	for _, k := range keys {
		got = append(got, k.Alias+"="+ssh.FingerprintSHA256(k.Key))
	}
	want := []string{"devmesh.ml.gpu=" + ssh.FingerprintSHA256(k2), "devmesh.web=" + ssh.FingerprintSHA256(k1), "devmesh.web.main=" + ssh.FingerprintSHA256(k1)}
	if !slices.Equal(got, want) {
		t.Errorf("keys = %q, want %q", got, want)
	}
}

func TestKnownHostsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cfg", KnownHostsName)
	k1, k2, k3 := newTestKey(t), newTestKey(t), newTestKey(t)

	// Before config-ssh ran, nothing is written.
	if r, err := EnsureKnownHost(path, "devmesh.a", k1, ""); err != nil || r != KnownHostUnmanaged {
		t.Fatalf("no file: %v, %v", r, err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("EnsureKnownHost created the file: %v", err)
	}
	if err := WriteKnownHosts(path, []HostKey{{Alias: "devmesh.a", Key: k1}}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	for _, tc := range []struct {
		alias string
		key   ssh.PublicKey
		want  KnownHostResult
	}{
		{"devmesh.a", k1, KnownHostPresent},
		{"devmesh.a", k2, KnownHostDiffers},
		{"devmesh.b", k3, KnownHostAdded},
		{"devmesh.b", k3, KnownHostPresent},
	} {
		if r, err := EnsureKnownHost(path, tc.alias, tc.key, ""); err != nil || r != tc.want {
			t.Errorf("EnsureKnownHost(%s) = %v, %v; want %v", tc.alias, r, err, tc.want)
		}
	}
	data, _ := os.ReadFile(path)
	got := ParseKnownHosts(data)
	if len(got) != 2 || !keysEqual(got["devmesh.a"], k1) || !keysEqual(got["devmesh.b"], k3) {
		t.Fatalf("file after updates:\n%s", data)
	}
	// OpenSSH finds the entries.
	if _, err := exec.LookPath("ssh-keygen"); err == nil {
		out, err := exec.Command("ssh-keygen", "-F", "devmesh.b", "-f", path).Output()
		if err != nil || !strings.Contains(string(out), "devmesh.b ssh-ed25519 ") {
			t.Errorf("ssh-keygen -F devmesh.b: %v\n%s", err, out)
		}
	}
}

// TestEnsureKnownHostConcurrent checks that concurrent adds (several
// ProxyCommands at once) lose no entry.
func TestEnsureKnownHostConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), KnownHostsName)
	if err := WriteKnownHosts(path, nil); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if _, err := EnsureKnownHost(path, "devmesh.w"+string(rune('a'+i)), newTestKey(t), ""); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	data, _ := os.ReadFile(path)
	if n := len(ParseKnownHosts(data)); n != 20 {
		t.Fatalf("%d entries after 20 concurrent adds:\n%s", n, data)
	}
}

func keysEqual(a, b ssh.PublicKey) bool {
	return a != nil && b != nil && string(a.Marshal()) == string(b.Marshal())
}

// TestKnownHostsNewAgent: an entry of another agent (the workspace was
// rebuilt, or deleted and created again) is replaced; another key of the
// same agent, or of an entry that names no agent, is not.
func TestKnownHostsNewAgent(t *testing.T) {
	path := filepath.Join(t.TempDir(), KnownHostsName)
	old, rebuilt, impostor := newTestKey(t), newTestKey(t), newTestKey(t)
	legacy := newTestKey(t)
	if err := WriteKnownHosts(path, []HostKey{{Alias: "devmesh.dev", Key: old, Agent: "agent-1"},
		{Alias: "devmesh.legacy", Key: legacy}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		alias, agent string
		key          ssh.PublicKey
		want         KnownHostResult
	}{
		{"devmesh.dev", "agent-1", impostor, KnownHostDiffers}, // same agent, new key: suspicious
		{"devmesh.dev", "", impostor, KnownHostDiffers},        // cannot tell
		{"devmesh.dev", "agent-2", rebuilt, KnownHostReplaced}, // a new agent
		{"devmesh.dev", "agent-2", rebuilt, KnownHostPresent},
		{"devmesh.dev", "agent-2", impostor, KnownHostDiffers},
		{"devmesh.legacy", "agent-3", impostor, KnownHostDiffers}, // written without an agent
	} {
		if r, err := EnsureKnownHost(path, tc.alias, tc.key, tc.agent); err != nil || r != tc.want {
			t.Errorf("EnsureKnownHost(%s, agent %q) = %v, %v; want %v", tc.alias, tc.agent, r, err, tc.want)
		}
	}
	data, _ := os.ReadFile(path)
	got := parseKnownHostEntries(data)
	if len(got) != 2 || !keysEqual(got["devmesh.dev"].Key, rebuilt) || got["devmesh.dev"].Agent != "agent-2" ||
		!keysEqual(got["devmesh.legacy"].Key, legacy) {
		t.Fatalf("file:\n%s", data)
	}
	if n := strings.Count(string(data), "devmesh.dev "); n != 1 {
		t.Errorf("devmesh.dev has %d entries:\n%s", n, data)
	}
}

// TestForgetWorkspace: a deleted workspace's entries go, the others and
// lines devmesh did not write stay.
func TestForgetWorkspace(t *testing.T) {
	path := filepath.Join(t.TempDir(), KnownHostsName)
	if n, err := ForgetWorkspace(path, "dev"); n != 0 || err != nil {
		t.Fatalf("no file: %d, %v", n, err)
	}
	k := newTestKey(t)
	keys := []HostKey{{Alias: "devmesh.dev", Key: k, Agent: "a1"}, {Alias: "devmesh.dev.main", Key: k, Agent: "a1"},
		{Alias: "devmesh.dev2", Key: k}, {Alias: "devmesh.dev2.main", Key: k}, {Alias: "devmesh.alice/dev", Key: k}}
	if err := WriteKnownHosts(path, keys); err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("# a comment of mine\n@revoked devmesh.dev " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))))
	f.Close()
	n, err := ForgetWorkspace(path, "dev")
	if err != nil || n != 2 {
		t.Fatalf("ForgetWorkspace = %d, %v; want 2", n, err)
	}
	data, _ := os.ReadFile(path)
	got := ParseKnownHosts(data)
	if _, ok := got["devmesh.dev"]; ok || got["devmesh.dev.main"] != nil || got["devmesh.dev2"] == nil ||
		got["devmesh.dev2.main"] == nil || got["devmesh.alice/dev"] == nil {
		t.Errorf("after forgetting dev:\n%s", data)
	}
	if !strings.Contains(string(data), "# a comment of mine\n@revoked devmesh.dev ") {
		t.Errorf("lines devmesh did not write were changed:\n%s", data)
	}
}
