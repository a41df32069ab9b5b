package netlab_test

import (
	"bufio"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/devmesh/devmesh/internal/netlab"
)

// TestFaultNATTurnsHard is the fault the issue found: both routers turn
// from easy into hard NATs while their old conntrack entries stay, and
// the agent restarts. The old direct path still half works (the old
// mappings carry one direction), and nothing may black-hole: ssh output
// must arrive, over DERP or a new path, within seconds.
func TestFaultNATTurnsHard(t *testing.T) {
	netlab.Skip(t)
	for _, restart := range []bool{true, false} {
		t.Run(fmt.Sprintf("agent restart %v", restart), func(t *testing.T) {
			t.Parallel()
			testNATTurnsHard(t, restart)
		})
	}
}

func testNATTurnsHard(t *testing.T, restart bool) {
	w, lans := newWorld(t, behind(netlab.EasyNAT, netlab.EasyNAT), netlab.CoordinatorOptions{})
	if r := w.ping(t); !r.Summary.Direct {
		t.Fatalf("easy NATs: path %s, want direct first", pathOf(r))
	}
	w.sshEcho(t)
	for _, lan := range lans {
		lan.SetNAT(netlab.HardNAT)
	}
	if restart {
		w.agent.Proc.Stop()
		w.agent.Start(t)
	}
	for i := range 3 {
		start := time.Now()
		out, errOut, err := w.cli.Run(40*time.Second, nil, "ssh", "ws", "--", "echo", "netlab-ok")
		took := time.Since(start)
		t.Logf("ssh %d after the NATs turned hard: %v in %s", i+1, err, took.Round(time.Millisecond))
		if err != nil || strings.TrimSpace(out) != "netlab-ok" {
			for _, lan := range lans {
				t.Logf("conntrack on %s:\n%s", lan.Router.NS, lan.Conntrack())
			}
			t.Fatalf("ssh %d after the NATs turned hard: %v\nstdout: %q\nstderr: %s", i+1, err, out, errOut)
		}
		if took > 20*time.Second {
			t.Errorf("ssh %d took %s", i+1, took)
		}
	}
	r := w.ping(t)
	netlab.Record(netlab.Row{Topology: "fault: easy NATs turn hard, agent restarts", Path: pathOf(r), ToDirect: r.Summary.DirectAfter, Mbps: w.transfer(t)})
}

// TestFaultDirectPathDies cuts a direct path under an open SSH session
// that prints a line every 200 ms: UDP dropped both ways, or only what
// the agent's LAN sends (a one-way black hole, as when a NAT mapping the
// peer still believes in stops carrying traffic). The session must go
// on through DERP: no gap in its output longer than maxGap, and it ends
// with all its lines and its exit status.
func TestFaultDirectPathDies(t *testing.T) {
	netlab.Skip(t)
	const maxGap = 10 * time.Second
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
