//go:build unix

package sshd

import (
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// TestAgentForwarding runs "ssh -A" with a local agent holding one key and
// lists the keys with ssh-add on the workspace side, through the
// forwarded SSH_AUTH_SOCK.
func TestAgentForwarding(t *testing.T) {
	requireTool(t, "ssh-add")
	ts := newTestServer(t, nil)

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv, Comment: "devmesh-test-key"}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = agent.ServeAgent(keyring, c)
			}()
		}
	}()

	cmd := ts.command(t, "ssh", "-A", "127.0.0.1", `echo "sock=$SSH_AUTH_SOCK"; ssh-add -l`)
	cmd.Env = append(cmd.Env, "SSH_AUTH_SOCK="+sock)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ssh -A: %v\n%s", err, out)
	}
	pub, err := gossh.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	if fp := gossh.FingerprintSHA256(pub); !strings.Contains(string(out), fp+" devmesh-test-key") {
		t.Errorf("ssh-add -l on the workspace does not list the forwarded key %s:\n%s", fp, out)
	}

	// The socket belongs to the session and goes away with it.
	_, after, _ := strings.Cut(string(out), "sock=")
	remoteSock, _, _ := strings.Cut(after, "\n")
	if !strings.HasSuffix(remoteSock, ".sock") {
		t.Fatalf("SSH_AUTH_SOCK=%q in the session", remoteSock)
	}
	waitFor(t, 5*time.Second, "the session's agent socket to be removed", func() bool {
		return fileGone(remoteSock)
	})
}
