//go:build linux

package netlab_test

import (
	"bufio"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/devmesh/devmesh/internal/netlab"
)

// TestConnectionSetup measures 100 fresh connections across two easy
// NATs: each `devmesh ssh ws -- echo` is a new tailnet node, and the time
// counted is from starting the command to the first byte of output
// (join, netmap, WireGuard handshake over DERP, SSH handshake, command).
func TestConnectionSetup(t *testing.T) {
	netlab.Skip(t)
	t.Parallel()
	n := 100
	if testing.Short() {
		n = 20
	}
	w, _ := newWorld(t, behind(netlab.EasyNAT, netlab.EasyNAT), netlab.CoordinatorOptions{})
	w.agentAddr(t) // waits for the agent
	var times []time.Duration
	for i := range n {
		cmd := w.cli.Command(t.Context(), "ssh", "ws", "--", "echo", "x")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		timer := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
		_, err = bufio.NewReader(stdout).ReadByte()
		d := time.Since(start)
		werr := cmd.Wait()
		timer.Stop()
		if err != nil || werr != nil {
			t.Fatalf("connection %d: %v, %v", i+1, err, werr)
		}
		times = append(times, d)
	}
	slices.Sort(times)
	q := func(p float64) time.Duration { return times[int(p*float64(len(times)-1)+0.5)].Round(time.Millisecond) }
	over2 := len(times) - slices.IndexFunc(times, func(d time.Duration) bool { return d > 2*time.Second })
	if times[len(times)-1] <= 2*time.Second {
		over2 = 0
	}
	summary := fmt.Sprintf("%d fresh connections to first byte: p50 %s, p90 %s, p99 %s, max %s, %d over 2 s", n, q(0.5), q(0.9), q(0.99), times[len(times)-1].Round(time.Millisecond), over2)
	t.Log(summary)
	netlab.Record(netlab.Row{Topology: "setup: devmesh ssh, new node each time (easy NATs)", Path: "-", Note: summary})
	if over := times[len(times)-1]; over > 10*time.Second {
		t.Errorf("a connection took %s to its first byte", over)
	}
}
