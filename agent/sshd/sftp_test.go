//go:build unix

package sshd

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSFTPAndSCP(t *testing.T) {
	ts := newTestServer(t, nil)
	local, remote := t.TempDir(), t.TempDir()
	data := make([]byte, 32<<20)
	_, _ = rand.Read(data)
	src := filepath.Join(local, "src.bin")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	want := sha256Hex(data)
	check := func(what, path string) {
		t.Helper()
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if sha256Hex(got) != want {
			t.Fatalf("%s: %d bytes with a different sha256 than the %d sent", what, len(got), len(data))
		}
	}

	t.Run("sftp", func(t *testing.T) {
		batch := filepath.Join(local, "batch")
		script := "pwd\nput " + src + " " + remote + "/up.bin\nget " + remote + "/up.bin " + local + "/down.bin\n"
		if err := os.WriteFile(batch, []byte(script), 0o600); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		cmd := ts.command(t, "sftp", "-b", batch, "127.0.0.1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("sftp: %v\n%s", err, out)
		}
		t.Logf("sftp put+get of 32 MiB took %v", time.Since(start).Round(time.Millisecond))
		check("sftp put", filepath.Join(remote, "up.bin"))
		check("sftp get", filepath.Join(local, "down.bin"))
		if !strings.Contains(string(out), "Remote working directory: "+ts.dir+"\n") {
			t.Errorf("sftp starts outside the session directory %s:\n%s", ts.dir, out)
		}
	})

	// OpenSSH 9 scp speaks SFTP; -O is the legacy protocol, which runs
	// "scp -t" on the server as an ordinary command.
	for _, mode := range []struct{ name, flag string }{{"scp", ""}, {"scp legacy", "-O"}} {
		t.Run(mode.name, func(t *testing.T) {
			var flags []string
			if mode.flag != "" {
				flags = append(flags, mode.flag)
			}
			dst := filepath.Join(remote, strings.ReplaceAll(mode.name, " ", "-")+".bin")
			start := time.Now()
			cmd := ts.command(t, "scp", append(flags, src, "127.0.0.1:"+dst)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("scp: %v\n%s", err, out)
			}
			t.Logf("%s upload of 32 MiB took %v", mode.name, time.Since(start).Round(time.Millisecond))
			check(mode.name, dst)
		})
	}
}

func TestSFTPUnknownSubsystem(t *testing.T) {
	ts := newTestServer(t, nil)
	sess, err := ts.client(t).NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.RequestSubsystem("nope"); err == nil {
		t.Error("unknown subsystem accepted")
	}
}
