//go:build linux

package netlab_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/devmesh/devmesh/internal/netlab"
)

// TestFaultNATTurnsHard is the fault the issue found, step by step as it
// describes: two easy NATs (plain MASQUERADE, as the routers;
// and our SNAT kind), a direct path and a working ssh; then both routers
// turn into hard NATs (MASQUERADE --random-fully) while their old
// conntrack entries stay, the agent restarts, `devmesh ping` answers and
// `devmesh ssh ws -- echo` must complete, over DERP or a new path, within
// seconds. Both routers are captured (UDP) from the change on; a failed
// run keeps the captures in $NETLAB_LOGDIR. NETLAB_REPEAT=N runs the
// issue's case N times.
func TestFaultNATTurnsHard(t *testing.T) {
	netlab.Skip(t)
	runs := 1
	if n, err := strconv.Atoi(os.Getenv("NETLAB_REPEAT")); err == nil && n > 0 {
		runs = n
	}
	type tc struct {
		name    string
		easy    netlab.NAT
		restart bool
		daemon  bool // the client goes through a devmesh daemon, whose socket outlives the change
	}
	var cases []tc
	for i := range runs {
		cases = append(cases, tc{fmt.Sprintf("MASQUERADE, agent restarts, run %d", i+1), netlab.MasqueradeNAT, true, false})
	}
	cases = append(cases, tc{"SNAT, agent keeps running", netlab.EasyNAT, false, false},
		tc{"MASQUERADE, agent restarts, client daemon", netlab.MasqueradeNAT, true, true})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			testNATTurnsHard(t, c.easy, c.restart, c.daemon)
		})
	}
}

func testNATTurnsHard(t *testing.T, easy netlab.NAT, restart, daemon bool) {
	w, lans := newWorld(t, behind(easy, easy), netlab.CoordinatorOptions{})
	if daemon {
		w.cli.StartDaemon()
	}
	if r := w.ping(t); !r.Summary.Direct {
		t.Fatalf("easy NATs: path %s, want direct first", pathOf(r))
	}
	w.sshEcho(t)
	dir := t.TempDir()
	var pcaps []string
	for _, lan := range lans {
		pcaps = append(pcaps, lan.Router.Capture(dir, lan.Router.NS, "udp"))
	}
	for _, lan := range lans {
		lan.SetNAT(netlab.HardNAT)
	}
	if restart {
		w.agent.Proc.Stop()
		w.agent.Start(t)
	}
	r := w.ping(t)
	// Keep the captures, failed or not, when asked to.
	if logDir := os.Getenv(netlab.EnvLogDir); logDir != "" {
		t.Cleanup(func() {
			for _, p := range pcaps {
				if b, err := os.ReadFile(p); err == nil {
					os.WriteFile(filepath.Join(logDir, filepath.Base(p)), b, 0o600)
				}
			}
		})
	}
	failed := func(format string, args ...any) {
		t.Helper()
		for _, lan := range lans {
			t.Logf("conntrack on %s:\n%s", lan.Router.NS, lan.Conntrack())
		}
		t.Fatalf(format, args...)
	}
	for i := range 3 {
		start := time.Now()
		out, errOut, err := w.cli.Run(60*time.Second, nil, "ssh", "ws", "--", "echo", "netlab-ok")
		took := time.Since(start)
		t.Logf("ssh %d after the NATs turned hard: %v in %s", i+1, err, took.Round(time.Millisecond))
		if err != nil || strings.TrimSpace(out) != "netlab-ok" {
			failed("ssh %d after the NATs turned hard: %v\nstdout: %q\nstderr: %s", i+1, err, out, errOut)
		}
		if took > 20*time.Second {
			t.Errorf("ssh %d took %s", i+1, took)
		}
	}
	name := fmt.Sprintf("fault: %s NATs turn hard (stale conntrack)", easy)
	if restart {
		name += ", agent restarts"
	}
	if daemon {
		name += ", client daemon"
	}
	netlab.Record(netlab.Row{Topology: name, Path: pathOf(r), ToDirect: r.Summary.DirectAfter, Mbps: w.transfer(t)})
}

// TestFaultDirectPathDies cuts a direct path under an open SSH session
// that prints a line every 200 ms: UDP dropped both ways, or only what
// the agent's LAN sends (a one-way black hole, as when a NAT mapping the
// peer still believes in stops carrying traffic). The session must go
// on through DERP: no gap in its output longer than maxGap, and it ends
// with all its lines and its exit status.
func TestFaultDirectPathDies(t *testing.T) {
	netlab.Skip(t)
	// magicsock trusts a direct path for 6.5 s after its last pong, then
	// needs a failed disco ping (up to 5 s) before it sends over DERP: gaps
	// of 6.4 to 12.8 s were measured. The bug this guards against is a
	// session that never falls back (the issue saw it give up after 60 s).
	const maxGap = 15 * time.Second
	for _, tc := range []struct {
		name  string
		block func(agentLAN *netlab.LAN)
	}{
		{"UDP blocked mid-session", func(l *netlab.LAN) { l.BlockUDP(true) }},
		{"agent's outbound UDP black-holed mid-session", func(l *netlab.LAN) { l.BlockUDPOut(true) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w, lans := newWorld(t, behind(netlab.EasyNAT, netlab.EasyNAT), netlab.CoordinatorOptions{})
			if r := w.ping(t); !r.Summary.Direct {
				t.Fatalf("easy NATs: path %s, want direct first", pathOf(r))
			}
			const lines = 150 // 30 s
			cmd := w.cli.Command(t.Context(), "ssh", "ws", "--", "sh", "-c",
				fmt.Sprintf("i=0; while [ $i -lt %d ]; do i=$((i+1)); echo $i; sleep 0.2; done", lines))
			var errOut strings.Builder
			cmd.Stderr = &errOut
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			timer := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
			defer timer.Stop()
			sc := bufio.NewScanner(stdout)
			var got int
			var worst time.Duration
			last := time.Now()
			for sc.Scan() {
				got++
				if gap := time.Since(last); got > 1 && gap > worst {
					worst = gap
				}
				last = time.Now()
				if got == 25 { // 5 s in, over the direct path
					tc.block(lans[1])
					t.Logf("blocked at line %d", got)
				}
			}
			err = cmd.Wait()
			t.Logf("%d lines, longest gap %s, exit %v", got, worst.Round(time.Millisecond), err)
			if err != nil || got != lines {
				t.Fatalf("session: %d of %d lines, %v\n%s", got, lines, err, errOut.String())
			}
			if worst > maxGap {
				t.Errorf("output stalled %s (want under %s) when the direct path died", worst.Round(time.Millisecond), maxGap)
			}
			netlab.Record(netlab.Row{Topology: "fault: " + tc.name, Path: "direct, then relayed", Note: fmt.Sprintf("longest output gap %s", worst.Round(10*time.Millisecond))})
		})
	}
}

// TestFaultCoordinatorDown kills the coordinator under an open SSH
// session between two NATed hosts: the session goes on; a new `devmesh
// ssh` fails fast with a clear message; once the coordinator is back (same
// data directory), new connections work without restarting anything.
//
// The coordinator serves https (a certificate from the lab's CA). With an
// http:// access URL on a public address, nodes do not come back: after a
// failed control dial, tailscale.com's control client (v1.102,
// controlhttp forceNoise443) retries only https://HOST:443 for as long
// as its dials are under two minutes apart, which its backoff keeps them.
// See docs/networking.md.
func TestFaultCoordinatorDown(t *testing.T) {
	netlab.Skip(t)
	t.Parallel()
	w, _ := newWorld(t, behind(netlab.EasyNAT, netlab.EasyNAT), netlab.CoordinatorOptions{TLS: true})
	w.agentAddr(t)
	const lines = 100 // 20 s
	cmd := w.cli.Command(t.Context(), "ssh", "ws", "--", "sh", "-c",
		fmt.Sprintf("i=0; while [ $i -lt %d ]; do i=$((i+1)); echo $i; sleep 0.2; done", lines))
	var errOut strings.Builder
	cmd.Stderr = &errOut
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()
	sc := bufio.NewScanner(stdout)
	got := 0
	var worst time.Duration
	last := time.Now()
	var downMsg string
	var downTook time.Duration
	for sc.Scan() {
		got++
		if gap := time.Since(last); got > 1 && gap > worst {
			worst = gap
		}
		last = time.Now()
		if got == 25 {
			w.coord.Proc.Kill()
			start := time.Now()
			out, errOut, err := w.cli.Run(time.Minute, nil, "ssh", "ws", "--", "echo", "x")
			downTook = time.Since(start)
			if err == nil {
				t.Errorf("devmesh ssh with the coordinator down succeeded: %q", out)
			}
			downMsg = strings.TrimSpace(errOut)
			last = time.Now() // the check above blocked this reader
		}
		if got == 50 {
			w.coord.Start(t)
		}
	}
	err = cmd.Wait()
	t.Logf("session: %d lines, longest gap %s, %v; new ssh while down: %s after %s", got, worst, err, downMsg, downTook.Round(time.Millisecond))
	if err != nil || got != lines {
		t.Fatalf("the open session: %d of %d lines, %v\n%s", got, lines, err, errOut.String())
	}
	if downTook > 15*time.Second || strings.Contains(downMsg, "dial tcp") || !strings.Contains(downMsg, "coordinator") {
		t.Errorf("devmesh ssh with the coordinator down: %q after %s; want a clear message about the coordinator within 15 s", downMsg, downTook)
	}
	// The coordinator came back at line 50, about 5 s ago: the agent
	// reconnects by itself.
	start := time.Now()
	out, errOut2, err := w.cli.Run(90*time.Second, nil, "ssh", "--wait", "ws", "--", "echo", "netlab-ok")
	recovered := time.Since(start)
	if err != nil || strings.TrimSpace(out) != "netlab-ok" {
		t.Fatalf("devmesh ssh after the coordinator came back: %v\n%s%s", err, out, errOut2)
	}
	netlab.Record(netlab.Row{Topology: "fault: coordinator down, then back", Path: "-", Note: fmt.Sprintf(
		"open session: longest gap %s; new ssh while down failed in %s; ssh --wait after restart took %s",
		worst.Round(10*time.Millisecond), downTook.Round(10*time.Millisecond), recovered.Round(10*time.Millisecond))})
}

// TestFaultAgentRestart restarts the agent inside its namespace: it keeps
// its tailnet address, and a client reaches it again, directly.
func TestFaultAgentRestart(t *testing.T) {
	netlab.Skip(t)
	t.Parallel()
	w, _ := newWorld(t, behind(netlab.EasyNAT, netlab.EasyNAT), netlab.CoordinatorOptions{})
	before := w.agentAddr(t)
	w.agent.Proc.Stop()
	w.agent.Start(t)
	start := time.Now()
	out, errOut, err := w.cli.Run(90*time.Second, nil, "ssh", "--wait", "ws", "--", "echo", "netlab-ok")
	back := time.Since(start)
	if err != nil || strings.TrimSpace(out) != "netlab-ok" {
		t.Fatalf("devmesh ssh after the agent restarted: %v\n%s%s", err, out, errOut)
	}
	if after := w.agentAddr(t); after != before {
		t.Errorf("the agent's address changed across a restart: %s, then %s", before, after)
	}
	r := w.ping(t)
	if !r.Summary.Direct {
		t.Errorf("path after the agent restarted: %s, want direct", pathOf(r))
	}
	netlab.Record(netlab.Row{Topology: "fault: agent restart", Path: pathOf(r), ToDirect: r.Summary.DirectAfter,
		Note: fmt.Sprintf("same address %s; ssh --wait back after %s", before, back.Round(10*time.Millisecond))})
}

// TestFaultNATRebinding renumbers the client's router under an open SSH
// session over a direct path: the client's public endpoint changes. The
// session must go on, and the path must be direct again soon after.
func TestFaultNATRebinding(t *testing.T) {
	netlab.Skip(t)
	t.Parallel()
	w, lans := newWorld(t, behind(netlab.EasyNAT, netlab.EasyNAT), netlab.CoordinatorOptions{})
	if r := w.ping(t); !r.Summary.Direct {
		t.Fatalf("easy NATs: path %s, want direct first", pathOf(r))
	}
	const lines = 150 // 30 s
	cmd := w.cli.Command(t.Context(), "ssh", "--debug", "ws", "--", "sh", "-c",
		fmt.Sprintf("i=0; while [ $i -lt %d ]; do i=$((i+1)); echo $i; sleep 0.2; done", lines))
	var errOut strings.Builder
	cmd.Stderr = &errOut
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()
	sc := bufio.NewScanner(stdout)
	got := 0
	var worst time.Duration
	last := time.Now()
	var renumbered time.Time
	for sc.Scan() {
		got++
		if gap := time.Since(last); got > 1 && gap > worst {
			worst = gap
		}
		last = time.Now()
		if got == 25 {
			lans[0].Renumber()
			renumbered = time.Now()
		}
	}
	err = cmd.Wait()
	if err != nil || got != lines {
		if dir := os.Getenv(netlab.EnvLogDir); dir != "" {
			os.WriteFile(filepath.Join(dir, "client-ssh.log"), []byte(errOut.String()), 0o600)
		}
		t.Fatalf("session across the rebinding: %d of %d lines, %v\n%s", got, lines, err, lastLines(errOut.String(), 5))
	}
	// A new client after the rebinding: how long until direct.
	r := w.ping(t)
	t.Logf("session: longest gap %s; ping %s after the rebinding: %s after %s", worst, time.Since(renumbered).Round(time.Second), pathOf(r), r.Summary.DirectAfter)
	if !r.Summary.Direct {
		t.Errorf("path after the rebinding: %s, want direct", pathOf(r))
	}
	// The goal is 10 s; magicsock needs 6.5 s to give up on the
	// old path plus a DERP reconnect (the old TCP connection died with
	// the old address): about 13 s measured.
	if worst > 20*time.Second {
		t.Errorf("the open session stalled %s across the rebinding", worst)
	}
	netlab.Record(netlab.Row{Topology: "fault: client's NAT rebinds (new public address)", Path: pathOf(r), ToDirect: r.Summary.DirectAfter,
		Note: fmt.Sprintf("open session survived, longest gap %s", worst.Round(10*time.Millisecond))})
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestFaultLANCut unplugs the agent's LAN for 20 s under an open SSH
// session that prints a line every 200 ms, then plugs it back: the agent
// reconnects by itself (a new `devmesh ssh` works), and the open session
// resumes with every line and its exit status (TCP inside the tunnel
// retransmits; nothing on either side gives up within 20 s).
func TestFaultLANCut(t *testing.T) {
	netlab.Skip(t)
	t.Parallel()
	const cut = 20 * time.Second
	w, lans := newWorld(t, behind(netlab.EasyNAT, netlab.EasyNAT), netlab.CoordinatorOptions{})
	if r := w.ping(t); !r.Summary.Direct {
		t.Fatalf("easy NATs: path %s, want direct first", pathOf(r))
	}
	const lines = 200 // 40 s
	cmd := w.cli.Command(t.Context(), "ssh", "ws", "--", "sh", "-c",
		fmt.Sprintf("i=0; while [ $i -lt %d ]; do i=$((i+1)); echo $i; sleep 0.2; done", lines))
	var errOut strings.Builder
	cmd.Stderr = &errOut
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(3*time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()
	// Cut 5 s into the session, heal 20 s later, while this goroutine
	// reads the output.
	healedc := make(chan error, 1)
	go func() {
		time.Sleep(5 * time.Second)
		if err := lans[1].Cut(true); err != nil {
			healedc <- err
			return
		}
		time.Sleep(cut)
		healedc <- lans[1].Cut(false)
	}()
	sc := bufio.NewScanner(stdout)
	got := 0
	var worst time.Duration
	last := time.Now()
	for sc.Scan() {
		got++
		if gap := time.Since(last); got > 1 && gap > worst {
			worst = gap
		}
		last = time.Now()
	}
	err = cmd.Wait()
	if err := <-healedc; err != nil {
		t.Fatal(err)
	}
	t.Logf("session: %d of %d lines, longest gap %s, exit %v\n%s", got, lines, worst.Round(time.Millisecond), err, lastLines(errOut.String(), 3))
	if err != nil || got != lines {
		t.Errorf("the open session across a %s LAN cut: %d of %d lines, %v\n%s", cut, got, lines, err, errOut.String())
	}
	start := time.Now()
	out, errOut2, err := w.cli.Run(90*time.Second, nil, "ssh", "--wait", "ws", "--", "echo", "netlab-ok")
	back := time.Since(start)
	if err != nil || strings.TrimSpace(out) != "netlab-ok" {
		t.Fatalf("devmesh ssh after the LAN came back: %v\n%s%s", err, out, errOut2)
	}
	netlab.Record(netlab.Row{Topology: "fault: agent's LAN cut 20 s, then back", Path: "-", Note: fmt.Sprintf(
		"open session resumed, %d/%d lines, longest gap %s; new ssh after %s", got, lines, worst.Round(10*time.Millisecond), back.Round(10*time.Millisecond))})
}
