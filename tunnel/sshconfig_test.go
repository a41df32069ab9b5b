package tunnel

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func testBlock(aliases ...string) string {
	return SSHConfig{
		DevmeshPath:    "/opt/dev mesh/bin/devmesh",
		KnownHostsFile: "/home/a/.config/devmesh/known_hosts",
		Coordinator:    "https://devmesh.example.com",
		Aliases:        aliases,
	}.Block()
}

func TestSSHConfigBlock(t *testing.T) {
	b := SSHConfig{
		DevmeshPath:    "/opt/dev mesh/bin/devmesh",
		ConfigDir:      "/tmp/cfg 100%",
		KnownHostsFile: "/home/a b/.config/devmesh/known_hosts",
		Coordinator:    "https://devmesh.example.com",
		Aliases:        []string{"devmesh.dev", "devmesh.dev.main"},
	}.Block()
	for _, want := range []string{
		BlockStart + "\n",
		"Host devmesh.dev\n  HostKeyAlias devmesh.dev\n",
		"Host devmesh.dev.main\n  HostKeyAlias devmesh.dev.main\n",
		"Host devmesh.*\n",
		// Shell-quoted for ProxyCommand's sh -c, % doubled except in %n.
		"  ProxyCommand env DEVMESH_CONFIG_DIR='/tmp/cfg 100%%' '/opt/dev mesh/bin/devmesh' ssh --stdio %n\n",
		`  UserKnownHostsFile "/home/a b/.config/devmesh/known_hosts"` + "\n",
		"  StrictHostKeyChecking yes\n",
		BlockEnd + "\n",
	} {
		if !strings.Contains(b, want) {
			t.Errorf("block lacks %q:\n%s", want, b)
		}
	}
	if !strings.HasSuffix(b, BlockEnd+"\n") || !strings.HasPrefix(b, BlockStart+"\n") {
		t.Errorf("block does not start and end with the markers:\n%s", b)
	}
}

// TestSSHConfigBlockParses checks that OpenSSH reads the block as meant:
// `ssh -G` prints the effective configuration for a host.
func TestSSHConfigBlockParses(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no OpenSSH client")
	}
	cfg := filepath.Join(t.TempDir(), "config")
	os.WriteFile(cfg, []byte("Host other\n  User bob\n\n"+testBlock("devmesh.dev")), 0o600)
	out, err := exec.Command("ssh", "-G", "-F", cfg, "devmesh.dev").Output()
	if err != nil {
		t.Fatalf("ssh -G: %v\n%s", err, out)
	}
	for _, want := range []string{
		"proxycommand '/opt/dev mesh/bin/devmesh' ssh --stdio %n", // ssh -G does not expand %n
		"userknownhostsfile /home/a/.config/devmesh/known_hosts\n",
		"stricthostkeychecking true\n",
		"hostkeyalias devmesh.dev\n",
		"loglevel ERROR\n",
		"serveraliveinterval 15\n",
		"ciphers " + strings.Join(Ciphers(), ",") + "\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("ssh -G devmesh.dev lacks %q", want)
		}
	}
	out, _ = exec.Command("ssh", "-G", "-F", cfg, "devmesh.new.main").Output()
	if !strings.Contains(string(out), "ssh --stdio %n") {
		t.Errorf("the wildcard does not cover a new workspace:\n%s", out)
	}
	out, _ = exec.Command("ssh", "-G", "-F", cfg, "other").Output()
	if strings.Contains(string(out), "proxycommand") || !strings.Contains(string(out), "user bob\n") {
		t.Errorf("the block leaks into other hosts:\n%s", out)
	}
}

func TestReplaceBlock(t *testing.T) {
	user := "# my config\nHost work\n  User me\n  # keep this comment   \n\nHost *\n  ServerAliveInterval 60"
	b1, b2 := testBlock("devmesh.a"), testBlock("devmesh.a", "devmesh.b")

	// Appending keeps every user byte and separates with a blank line.
	got, err := ReplaceBlock(user, b1)
	if err != nil {
		t.Fatal(err)
	}
	if got != user+"\n\n"+b1 {
		t.Fatalf("append:\n%q", got)
	}
	// Idempotent.
	again, err := ReplaceBlock(got, b1)
	if err != nil || again != got {
		t.Fatalf("second apply changed the file (%v):\n%s", err, UnifiedDiff("a", "b", got, again))
	}
	// Replacing changes only the block, wherever it is.
	moved := strings.Replace(got, user+"\n\n", "", 1) + "\n" + user + "\n"
	replaced, err := ReplaceBlock(moved, b2)
	if err != nil {
		t.Fatal(err)
	}
	if replaced != b2+"\n"+user+"\n" {
		t.Fatalf("replace in the middle:\n%q", replaced)
	}
	// Empty and missing files.
	if got, _ := ReplaceBlock("", b1); got != b1 {
		t.Fatalf("empty file: %q", got)
	}
	if got, _ := ReplaceBlock("Host x\n", b1); got != "Host x\n\n"+b1 {
		t.Fatalf("file ending in a newline: %q", got)
	}
	if got, _ := ReplaceBlock("Host x\n\n", b1); got != "Host x\n\n"+b1 {
		t.Fatalf("file ending in a blank line: %q", got)
	}
}

func TestReplaceBlockBroken(t *testing.T) {
	for name, cfg := range map[string]string{
		"start only": "Host x\n" + BlockStart + "\nHost y\n",
		"end only":   "Host x\n" + BlockEnd + "\n",
		"two blocks": testBlock() + testBlock(),
		"end first":  BlockEnd + "\n" + BlockStart + "\n",
		"two starts": BlockStart + "\n" + BlockStart + "\n" + BlockEnd + "\n",
	} {
		if _, err := ReplaceBlock(cfg, testBlock()); !errors.Is(err, ErrBrokenBlock) {
			t.Errorf("%s: err = %v, want ErrBrokenBlock", name, err)
		}
	}
}

func TestUnifiedDiffMatchesDiffU(t *testing.T) {
	if _, err := exec.LookPath("diff"); err != nil {
		t.Skip("no diff(1)")
	}
	base := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\n"
	cases := map[string][2]string{
		"append":         {base, base + "\n" + testBlock("devmesh.x")},
		"replace middle": {base + testBlock("devmesh.x") + "m\nn\n", base + testBlock("devmesh.x", "devmesh.y") + "m\nn\n"},
		"two hunks":      {base + base, strings.Replace(strings.Replace(base+base, "b\n", "B\n", 1), "k\nl\na", "k\nL\na", 1)},
		"from empty":     {"", testBlock()},
		"no newline":     {"x\ny", "x\ny\nz\n"},
		"delete":         {base, strings.Replace(base, "e\nf\n", "", 1)},
	}
	for name, c := range cases {
		dir := t.TempDir()
		a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
		os.WriteFile(a, []byte(c[0]), 0o600)
		os.WriteFile(b, []byte(c[1]), 0o600)
		want, _ := exec.Command("diff", "-u", "--label", "old", "--label", "new", a, b).Output()
		if got := UnifiedDiff("old", "new", c[0], c[1]); got != string(want) {
			t.Errorf("%s:\ngot:\n%s\nwant (diff -u):\n%s", name, got, want)
		}
	}
	if d := UnifiedDiff("a", "b", base, base); d != "" {
		t.Errorf("equal inputs: %q", d)
	}
}

// TestBlockForWindows: Windows' OpenSSH starts ProxyCommand with
// CreateProcess, without a shell: the full path of devmesh.exe in double
// quotes (spaces in Program Files), no env(1), % doubled, and the
// known_hosts path with forward slashes.
func TestBlockForWindows(t *testing.T) {
	c := SSHConfig{
		DevmeshPath:    `C:\Program Files\devmesh 100%\devmesh.exe`,
		KnownHostsFile: `C:\Users\Ann Lee\AppData\Roaming\devmesh\known_hosts`,
		Coordinator:    "https://coord.example",
		Windows:        true,
	}
	block := c.Block()
	for _, want := range []string{
		`  ProxyCommand "C:\Program Files\devmesh 100%%\devmesh.exe" ssh --stdio %n` + "\n",
		`  UserKnownHostsFile "C:/Users/Ann Lee/AppData/Roaming/devmesh/known_hosts"` + "\n",
	} {
		if !strings.Contains(block, want) {
			t.Errorf("block lacks %q:\n%s", want, block)
		}
	}
	c.ConfigDir = `D:\devmesh cfg\`
	if want := `  ProxyCommand "C:\Program Files\devmesh 100%%\devmesh.exe" ssh --stdio --config-dir "D:\devmesh cfg\\" %n` + "\n"; !strings.Contains(c.Block(), want) {
		t.Errorf("with a config dir, block lacks %q:\n%s", want, c.Block())
	}
	if strings.Contains(c.Block(), "env ") {
		t.Error("env(1) does not exist on Windows")
	}
	for in, want := range map[string]string{
		`C:\x\devmesh.exe`: `"C:\x\devmesh.exe"`,
		`C:\`:              `"C:\\"`,
		`a"b`:              `"a\"b"`,
		`a\"b`:             `"a\\\"b"`,
	} {
		if got := windowsQuote(in); got != want {
			t.Errorf("windowsQuote(%q) = %q, want %q", in, got, want)
		}
	}
}
