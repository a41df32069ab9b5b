// Command benchrun is `make bench`: it measures devmesh beside a baseline
// in the same run, prints a table, writes bench/results.json and
// regenerates docs/benchmarks.md. Figures are ratios to their baselines;
// nothing here fails on a number.
//
// BENCH_SHORT=1 runs every row at a small size (for CI).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

type options struct {
	devmesh string // path to the devmesh binary under test
	out     string // results.json
	docs    string // docs/benchmarks.md ("" to leave it)
	short   bool
	// docsAlways writes the docs page from a short run too (it says so).
	docsAlways bool
	nodes      []int // control-plane sizes
	// profile is a directory for CPU and heap profiles of the
	// coordinator under the control-plane loads ("" for none).
	profile string
	// rows picks what runs: all, control or workspace (a shorthand for
	// only=ssh,speed,provision).
	rows string
	// only, if not empty, names the row groups to run (control, ssh,
	// speed, provision); the docs page is then left alone.
	only map[string]bool
	// noRef skips tailscale's test control server in the control-plane
	// rows (it is quadratic and slow; for quick iterations).
	noRef bool
}

// wants reports whether the row group runs.
func (o options) wants(group string) bool { return len(o.only) == 0 || o.only[group] }

func main() {
	// A child started by controlRef: serve the reference control server.
	if len(os.Args) > 1 && os.Args[1] == "refcontrol" {
		serveRefControl()
		return
	}
	// A child started by tsnetPair: serve the speedtest on a tsnet node.
	if len(os.Args) > 2 && os.Args[1] == "tsnetpeer" {
		serveTSNetPeer(os.Args[2])
		return
	}
	o := options{}
	flag.StringVar(&o.devmesh, "devmesh", "bin/devmesh", "the devmesh binary to measure")
	flag.StringVar(&o.out, "out", "bench/results.json", "where to write the results")
	flag.StringVar(&o.docs, "docs", "docs/benchmarks.md", "the page to regenerate from a full run (empty: none)")
	flag.BoolVar(&o.docsAlways, "docs-from-short", false, "regenerate the docs page even from a short run")
	flag.BoolVar(&o.short, "short", os.Getenv("BENCH_SHORT") != "", "small sizes, for CI (also $BENCH_SHORT)")
	flag.StringVar(&o.profile, "profile", os.Getenv("BENCH_PROFILE"), "save CPU and heap profiles of the coordinator under the control-plane loads in this directory (also $BENCH_PROFILE)")
	flag.StringVar(&o.rows, "rows", "all", "what to measure: all, control (the control plane) or workspace (ssh, tunnel, provisioning)")
	flag.BoolVar(&o.noRef, "no-ref", false, "control plane: measure devmesh only, without tailscale's test control server as the baseline")
	flag.Func("server-env", "KEY=VALUE to add to the coordinators' environment (repeatable), e.g. GOMEMLIMIT=900MiB", func(kv string) error {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("want KEY=VALUE, got %q", kv)
		}
		serverEnv = append(serverEnv, kv)
		return nil
	})
	nodes := flag.String("nodes", "", "control-plane sizes, comma-separated (default 200,1000,5000; 100 when short)")
	only := flag.String("only", "", "comma-separated row groups to run: control, ssh, speed, provision (default all)")
	flag.Parse()
	for _, g := range strings.Split(*only, ",") {
		if g = strings.TrimSpace(g); g != "" {
			if o.only == nil {
				o.only = map[string]bool{}
			}
			o.only[g] = true
		}
	}
	if o.short {
		o.nodes = []int{100}
	} else {
		o.nodes = []int{200, 1000, 5000}
	}
	if *nodes != "" {
		o.nodes = nil
		for _, f := range strings.Split(*nodes, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 2 {
				fmt.Fprintf(os.Stderr, "bench: -nodes: %q is not a size of 2 or more\n", f)
				os.Exit(2)
			}
			o.nodes = append(o.nodes, n)
		}
	}
	switch o.rows {
	case "all":
	case "control":
		o.only = map[string]bool{"control": true}
	case "workspace":
		o.only = map[string]bool{"ssh": true, "speed": true, "provision": true}
	default:
		fmt.Fprintln(os.Stderr, "bench: -rows: want all, control or workspace")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	r := newReport(o.short)
	for _, n := range o.nodes {
		if !o.wants("control") {
			break
		}
		if err := benchControl(ctx, o, r, n); err != nil {
			// A benchmark that cannot run is reported, not fatal: the
			// other rows still tell something.
			r.fail(fmt.Sprintf("control plane N=%d", n), err)
		}
	}
	if o.wants("provision") {
		fmt.Fprintln(os.Stderr, "provisioning: local template against bare terraform")
		if err := benchProvision(ctx, o, r); err != nil {
			r.fail("provisioning rows", err)
		}
	}
	if o.wants("ssh") || o.wants("speed") {
		if err := benchWorkspace(ctx, o, r); err != nil {
			r.fail("workspace rows", err)
		}
	}
	r.print(os.Stdout)
	if err := r.writeJSON(o.out); err != nil {
		return err
	}
	if (!o.short || o.docsAlways) && o.docs != "" && len(o.only) == 0 {
		return r.writeDocs(o.docs)
	}
	return nil
}

// benchWorkspace measures the data-plane rows on one external workspace
// whose agent runs on this machine.
func benchWorkspace(ctx context.Context, o options, r *report) error {
	dir, err := os.MkdirTemp("", "devmesh-bench-ws-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintln(os.Stderr, "workspace: starting a coordinator and an agent")
	w, err := startWorkspace(ctx, o.devmesh, dir)
	if err != nil {
		return err
	}
	defer w.stop()
	if o.wants("ssh") {
		fmt.Fprintln(os.Stderr, "ssh: devmesh against OpenSSH")
		if err := benchSSH(ctx, o, r, w, dir); err != nil {
			r.fail("ssh rows", err)
		}
	}
	if o.wants("speed") {
		fmt.Fprintln(os.Stderr, "tunnel: speedtest against raw TCP and a tsnet pair")
		if err := benchSpeed(ctx, o, r, w); err != nil {
			r.fail("speedtest rows", err)
		}
	}
	return nil
}
