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
	if r, err := EnsureKnownHost(path, "devmesh.a", k1); err != nil || r != KnownHostUnmanaged {
		t.Fatalf("no file: %v, %v", r, err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("EnsureKnownHost created the file: %v", err)
	}
	if err := WriteKnownHosts(path, []HostKey{{"devmesh.a", k1}}); err != nil {
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
		if r, err := EnsureKnownHost(path, tc.alias, tc.key); err != nil || r != tc.want {
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
			if _, err := EnsureKnownHost(path, "devmesh.w"+string(rune('a'+i)), newTestKey(t)); err != nil {
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
