// Command loadgen puts a control-plane load on a coordinator: N nodes of
// one user register and stream their maps, then endpoint changes are
// timed until they reach every peer. It prints one JSON object (the
// result, with the server's CPU and memory when -pid is given).
//
// The auth key is read from $LOADGEN_AUTHKEY, never from the command
// line. Against tailscale's test control server any key is accepted.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/devmesh/devmesh/bench/loadgen"
)

type output struct {
	Label string `json:"label"`
	loadgen.Result
	// CPUPerRegistration and CPUPerChange are the server's CPU time over
	// the registration phase per node, and over the fan-out phase per
	// change (with its deliveries), when -pid is given.
	CPUPerRegistration time.Duration `json:"cpu_per_registration_ns,omitempty"`
	CPUPerChange       time.Duration `json:"cpu_per_change_ns,omitempty"`
	RSSBytes           int64         `json:"rss_bytes,omitempty"`
	Error              string        `json:"error,omitempty"`
}

func main() {
	var (
		cfg   loadgen.Config
		pid   = flag.Int("pid", 0, "the coordinator's process ID, to read its CPU time and memory")
		label = flag.String("label", "devmesh", "a name for this run in the output")
	)
	flag.StringVar(&cfg.URL, "url", "", "the control server's URL (required)")
	flag.IntVar(&cfg.Nodes, "n", 200, "nodes to register")
	flag.IntVar(&cfg.Concurrency, "c", 32, "registrations in flight")
	flag.IntVar(&cfg.Rounds, "rounds", 20, "endpoint changes to time")
	flag.DurationVar(&cfg.DeliveryTimeout, "timeout", 30*time.Second, "wait for one change to reach every peer")
	flag.Parse()
	if cfg.URL == "" {
		fmt.Fprintln(os.Stderr, "loadgen: -url is required")
		os.Exit(2)
	}
	cfg.AuthKey = os.Getenv("LOADGEN_AUTHKEY")
	cfg.Progress = func(f string, a ...any) { fmt.Fprintf(os.Stderr, "loadgen: "+f+"\n", a...) }
	stats := map[string]loadgen.ProcStat{}
	if *pid != 0 {
		cfg.Sample = func(phase string) {
			if st, err := loadgen.ReadProcStat(*pid); err == nil {
				stats[phase] = st
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := loadgen.Run(ctx, cfg)
	out := output{Label: *label, Result: res}
	if err != nil {
		out.Error = err.Error()
	}
	if a, b := stats["idle"], stats["registered"]; b.CPU > 0 && res.Registered > 0 {
		out.CPUPerRegistration = (b.CPU - a.CPU) / time.Duration(res.Registered)
	}
	if a, b := stats["meshed"], stats["fanout"]; b.CPU > 0 && cfg.Rounds > 0 {
		out.CPUPerChange = (b.CPU - a.CPU) / time.Duration(cfg.Rounds)
		out.RSSBytes = b.RSS
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	enc.Encode(out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}
