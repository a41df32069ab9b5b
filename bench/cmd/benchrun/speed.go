package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"slices"
	"time"
)

// rawTCP measures loopback TCP throughput in Mbit/s for d: the ceiling
// any tunnel on this machine is compared with.
func rawTCP(d time.Duration) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- 0
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 128<<10)
	t0 := time.Now()
	for time.Since(t0) < d {
		if _, err := c.Write(buf); err != nil {
			c.Close()
			return 0, err
		}
	}
	c.Close()
	n := <-got
	return float64(n) * 8 / 1e6 / time.Since(t0).Seconds(), nil
}

// benchSpeed runs devmesh speedtest both ways against raw loopback TCP
// and against a pair of plain tsnet nodes (tsnetPair), all in this run.
func benchSpeed(ctx context.Context, o options, r *report, w *workspace) error {
	d := 5 * time.Second
	if o.short {
		d = 2 * time.Second
	}
	raw, err := rawTCP(d)
	if err != nil {
		return err
	}
	pair := map[string]float64{}
	if down, up, err := tsnetPair(ctx, d); err != nil {
		r.fail("speedtest: tsnet pair baseline", err)
	} else {
		pair["down"], pair["up"] = down, up
	}
	direct := map[string]float64{}
	for _, dir := range []string{"down", "up"} {
		mbps, path, err := speedtest(ctx, w, dir, d)
		if err != nil {
			return err
		}
		direct[dir] = mbps
		r.add(figure{Name: "tunnel: speedtest " + dir, Value: mbps, Baseline: raw, Against: "raw loopback TCP, same run",
			Unit: "Mbit/s", Better: "higher", Note: "path " + path + "; goal >= 0.3x raw"})
		if b, ok := pair[dir]; ok {
			r.add(figure{Name: "tunnel: speedtest " + dir + " vs tsnet", Value: mbps, Baseline: b,
				Against: "two plain tsnet nodes on tailscale testcontrol, same protocol, same run",
				Unit:    "Mbit/s", Better: "higher", Note: "goal >= 1.0x"})
		}
	}
	return benchRelayed(ctx, r, w, d, direct)
}

// alwaysDERP makes a tailscale node send everything through its DERP
// relay (magicsock's TS_DEBUG_ALWAYS_USE_DERP).
const alwaysDERP = "TS_DEBUG_ALWAYS_USE_DERP=1"

// benchRelayed restarts the agent, and runs the CLI, with every packet
// through the coordinator's embedded DERP relay, and compares the
// speedtest with the direct one of this run. It leaves the agent
// running relayed: it is the last workspace row.
func benchRelayed(ctx context.Context, r *report, w *workspace, d time.Duration, direct map[string]float64) error {
	w.stopAgent()
	if err := w.startAgent(ctx, alwaysDERP); err != nil {
		return fmt.Errorf("agent on DERP only: %w", err)
	}
	for _, dir := range []string{"down", "up"} {
		mbps, path, err := speedtest(ctx, w, dir, d, alwaysDERP)
		if err != nil {
			return err
		}
		if path != "DERP (relayed)" {
			return fmt.Errorf("relayed speedtest %s went over %q", dir, path)
		}
		r.add(figure{Name: "tunnel: speedtest " + dir + ", relayed (DERP)", Value: mbps, Baseline: direct[dir],
			Against: "the direct speedtest, same run", Unit: "Mbit/s", Better: "higher",
			Note: "both nodes and the embedded relay on this machine; goal >= 0.3x direct"})
	}
	return nil
}

// speedtest runs devmesh speedtest to the workspace for d, with extraEnv
// added to the CLI's environment; it returns Mbit/s and the path named.
func speedtest(ctx context.Context, w *workspace, dir string, d time.Duration, extraEnv ...string) (float64, string, error) {
	cmd := w.command(ctx, "speedtest", "box", "--direction", dir, "-t", d.String(), "-o", "json")
	cmd.Env = append(slices.Clip(cmd.Env), extraEnv...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		return 0, "", fmt.Errorf("devmesh speedtest --direction %s: %v: %s", dir, err, bytes.TrimSpace(errb.Bytes()))
	}
	var rep struct {
		Mbps float64 `json:"mbps"`
		Path string  `json:"path"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		return 0, "", fmt.Errorf("speedtest output: %w", err)
	}
	return rep.Mbps, rep.Path, nil
}
