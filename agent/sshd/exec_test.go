//go:build unix

package sshd

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

func TestExecStreamsAndExitStatus(t *testing.T) {
	ts := newTestServer(t, nil)
	stdout, stderr, code := ts.run(t, "127.0.0.1", "sh -c 'echo hi; echo err >&2; exit 3'")
	if stdout != "hi\n" || stderr != "err\n" || code != 3 {
		t.Errorf("got stdout %q, stderr %q, exit %d; want \"hi\\n\", \"err\\n\", 3", stdout, stderr, code)
	}
}

func TestExecStdin(t *testing.T) {
	ts := newTestServer(t, nil)
	cmd := ts.command(t, "ssh", "127.0.0.1", "sha256sum")
	input := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	cmd.Stdin = bytes.NewReader(input)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	local := sha256Hex(input)
	if got := strings.Fields(string(out)); len(got) == 0 || got[0] != local {
		t.Errorf("remote sha256sum of stdin = %q, want %s", out, local)
	}
}

// TestBrokenShellReported checks that a session whose shell cannot start
// tells the user why, instead of closing silently.
func TestBrokenShellReported(t *testing.T) {
	ts := newTestServer(t, func(o *Options) { o.Shell = "/nonexistent/shell" })
	_, stderr, code := ts.run(t, "127.0.0.1", "true")
	if code != 127 || !strings.Contains(stderr, "/nonexistent/shell") {
		t.Errorf("exit %d, stderr %q; want 127 and a message naming the shell", code, stderr)
	}
}

func TestWorkingDirectory(t *testing.T) {
	ts := newTestServer(t, nil)
	stdout, _, code := ts.run(t, "127.0.0.1", "pwd")
	if code != 0 || strings.TrimSpace(stdout) != ts.dir {
		t.Errorf("pwd = %q (exit %d), want %s", stdout, code, ts.dir)
	}
}

func TestExitSignal(t *testing.T) {
	ts := newTestServer(t, nil)
	sess, err := ts.client(t).NewSession()
	if err != nil {
		t.Fatal(err)
	}
	err = sess.Run("kill -TERM $$")
	var ee *gossh.ExitError
	if !errors.As(err, &ee) || ee.Signal() != "TERM" {
		t.Fatalf("Run = %v, want exit-signal TERM", err)
	}
}

func TestSignalForwarded(t *testing.T) {
	ts := newTestServer(t, nil)
	sess, err := ts.client(t).NewSession()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Start(`trap 'echo got-usr1; exit 5' USR1; echo ready; while :; do sleep 0.05; done`); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := stdout.Read(buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("read %q, %v; want ready", buf, err)
	}
	if err := sess.Signal(gossh.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("command did not exit after SIGUSR1")
	}
	var ee *gossh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 5 {
		t.Errorf("Wait = %v, want exit status 5 from the trap", err)
	}
}

func TestEnvironment(t *testing.T) {
	// /bin/sh, because bash run by an SSH server sources ~/.bashrc,
	// which may change PATH.
	ts := newTestServer(t, func(o *Options) {
		o.Shell = "/bin/sh"
		o.Env = []string{"DEVMESH_TEST=from-options", "PATH=/opt/x:/usr/bin:/bin"}
	})
	acct, err := currentAccount()
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := ts.run(t, "-o", "SetEnv=FOO=bar DEVMESH_TEST=from-client", "127.0.0.1", "env")
	if code != 0 {
		t.Fatalf("env: exit %d: %s", code, stderr)
	}
	env := map[string]string{}
	for _, line := range strings.Split(stdout, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	want := map[string]string{
		"FOO":          "bar",
		"DEVMESH_TEST": "from-client", // the client overrides Options.Env
		"USER":         acct.name,
		"LOGNAME":      acct.name,
		"HOME":         acct.home,
		"SHELL":        "/bin/sh",
		"PATH":         "/opt/x:/usr/bin:/bin",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
	if f := strings.Fields(env["SSH_CONNECTION"]); len(f) != 4 || f[3] != ts.port {
		t.Errorf("SSH_CONNECTION=%q, want four fields ending in the server port %s", env["SSH_CONNECTION"], ts.port)
	}
	if _, ok := env["SSH_AUTH_SOCK"]; ok {
		t.Errorf("SSH_AUTH_SOCK set without agent forwarding")
	}
}

// TestKeepaliveAnswered checks that the server answers OpenSSH's
// ServerAliveInterval probes: with no answer within one interval, the
// client would give up before the command finishes.
func TestKeepaliveAnswered(t *testing.T) {
	ts := newTestServer(t, nil)
	stdout, stderr, code := ts.run(t, "-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=1",
		"127.0.0.1", "sleep 2.5; echo done")
	if code != 0 || stdout != "done\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// TestKeepaliveRefused checks the answers that clients count as signs of
// life: a refusal, both for global and for channel keepalives, leaving the
// connection and session usable.
func TestKeepaliveRefused(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.client(t)
	if ok, _, err := c.SendRequest("keepalive@openssh.com", true, nil); ok || err != nil {
		t.Errorf("global keepalive answered %v, %v; want a refusal", ok, err)
	}
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := sess.SendRequest("keepalive@openssh.com", true, nil); ok || err != nil {
		t.Errorf("channel keepalive answered %v, %v; want a refusal", ok, err)
	}
	if out, err := sess.Output("echo alive"); err != nil || string(out) != "alive\n" {
		t.Errorf("session after keepalive: %q, %v", out, err)
	}
}

func TestNoMoreSessions(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.client(t)
	if ok, _, err := c.SendRequest("no-more-sessions@openssh.com", true, nil); !ok || err != nil {
		t.Fatalf("no-more-sessions answered %v, %v", ok, err)
	}
	if sess, err := c.NewSession(); err == nil {
		sess.Close()
		t.Error("session opened after no-more-sessions@openssh.com")
	}
}

func TestStatsAndOnSession(t *testing.T) {
	var starts, ends int
	events := make(chan bool, 10)
	ts := newTestServer(t, func(o *Options) { o.OnSession = func(start bool) { events <- start } })
	for i := range 2 {
		if _, _, code := ts.run(t, "127.0.0.1", "exit "+strconv.Itoa(i)); code != i {
			t.Fatalf("exit %d, want %d", code, i)
		}
	}
	waitFor(t, 5*time.Second, "session end events", func() bool {
		for {
			select {
			case e := <-events:
				if e {
					starts++
				} else {
					ends++
				}
			default:
				return ends == 2
			}
		}
	})
	st := ts.srv.Stats()
	if starts != 2 || st.SessionsTotal != 2 || st.Sessions != 0 || st.ConnectionsTotal != 2 {
		t.Errorf("starts %d, stats %+v; want 2 sessions and connections in total, none open", starts, st)
	}
	if st.RxBytes < 1000 || st.TxBytes < 1000 {
		t.Errorf("byte counters too small: %+v", st)
	}
}
