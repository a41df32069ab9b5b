//go:build linux

package sshd

import (
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestSessionsGetDefaultSignals: an agent started with SIGHUP and SIGINT
// ignored (nohup; sh's `&`) must not pass that on to its sessions, or a
// session's programs would outlive their terminal and ignore Ctrl-C.
// (A CI rehearsal run under nohup failed TestClientKilled this way: the
// remote sleep ignored the hangup and lived until the SIGKILL.)
func TestSessionsGetDefaultSignals(t *testing.T) {
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT)
	defer signal.Reset(syscall.SIGHUP, syscall.SIGINT)
	ts := newTestServer(t, nil)
	for _, mode := range []string{"-T", "-tt"} {
		out, errOut, code := ts.run(t, mode, "127.0.0.1", "grep SigIgn /proc/self/status")
		if code != 0 {
			t.Fatalf("ssh %s: status %d, %s", mode, code, errOut)
		}
		f := strings.Fields(out)
		if len(f) != 2 {
			t.Fatalf("ssh %s: %q", mode, out)
		}
		mask, err := strconv.ParseUint(f[1], 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGINT} {
			if mask&(1<<(sig-1)) != 0 {
				t.Errorf("ssh %s: the session's command ignores %v (SigIgn %s)", mode, sig, f[1])
			}
		}
	}
}
