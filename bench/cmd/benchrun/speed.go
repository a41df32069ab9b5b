package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
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
	for _, dir := range []string{"down", "up"} {
		out, err := w.cli(ctx, "", "speedtest", "box", "--direction", dir, "-t", d.String(), "-o", "json")
		if err != nil {
			return err
		}
		var rep struct {
			Mbps float64 `json:"mbps"`
			Path string  `json:"path"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			return fmt.Errorf("speedtest output: %w", err)
		}
		r.add(figure{Name: "tunnel: speedtest " + dir, Value: rep.Mbps, Baseline: raw, Against: "raw loopback TCP, same run",
			Unit: "Mbit/s", Better: "higher", Note: "path " + rep.Path + "; goal >= 0.3x raw"})
		if b, ok := pair[dir]; ok {
			r.add(figure{Name: "tunnel: speedtest " + dir + " vs tsnet", Value: rep.Mbps, Baseline: b,
				Against: "two plain tsnet nodes on tailscale testcontrol, same protocol, same run",
				Unit:    "Mbit/s", Better: "higher", Note: "goal >= 1.0x"})
		}
	}
	return nil
}
