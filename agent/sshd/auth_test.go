//go:build unix

package sshd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

func TestWrongHostKeyRejectedByClient(t *testing.T) {
	ts := newTestServer(t, nil)
	other := newSigner(t)
	line := fmt.Sprintf("[127.0.0.1]:%s %s", ts.port, gossh.MarshalAuthorizedKey(other.PublicKey()))
	if err := os.WriteFile(ts.knownHosts, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "ran")
	_, stderr, code := ts.run(t, "127.0.0.1", "touch "+marker)
	if code != 255 || !strings.Contains(stderr, "Host key verification failed") {
		t.Errorf("ssh with a wrong known host key: exit %d, stderr %q; want 255 and a verification failure", code, stderr)
	}
	if !fileGone(marker) {
		t.Error("the command ran despite the host key mismatch")
	}
}

func TestAuthorizeRejects(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	ts := newTestServer(t, func(o *Options) {
		o.Authorize = func(ctx context.Context, remote net.Addr) error {
			if _, ok := ctx.Deadline(); !ok {
				t.Error("Authorize context has no deadline")
			}
			mu.Lock()
			seen = append(seen, remote.String())
			mu.Unlock()
			return errors.New("peer not in the workspace owner's tailnet")
		}
	})
	marker := filepath.Join(t.TempDir(), "ran")
	_, stderr, code := ts.run(t, "127.0.0.1", "touch "+marker)
	if code != 255 {
		t.Errorf("ssh exit %d (stderr %q), want 255", code, stderr)
	}
	if !fileGone(marker) {
		t.Error("the command ran although Authorize refused the connection")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || !strings.HasPrefix(seen[0], "127.0.0.1:") {
		t.Errorf("Authorize saw %q, want one call from 127.0.0.1", seen)
	}
}

func TestNilAuthorizeRejectsAll(t *testing.T) {
	ts := newTestServer(t, func(o *Options) { o.Authorize = nil })
	_, err := gossh.Dial("tcp", ts.addr, &gossh.ClientConfig{
		User:            "test",
		HostKeyCallback: gossh.FixedHostKey(ts.signer.PublicKey()),
		Timeout:         5 * time.Second,
	})
	if err == nil {
		t.Fatal("connected without an Authorize function")
	}
}

func TestNewRequiresHostKey(t *testing.T) {
	if _, err := New(Options{Authorize: AllowAll}); err == nil {
		t.Error("New without a host key succeeded")
	}
}
