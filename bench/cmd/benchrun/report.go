package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// figure is one measured row: a value beside its baseline from the same
// run. Ratio is Value/Baseline (0 when there is no baseline).
type figure struct {
	Name     string  `json:"name"`
	Value    float64 `json:"value"`
	Baseline float64 `json:"baseline"`
	Against  string  `json:"against"` // what the baseline is
	Ratio    float64 `json:"ratio"`
	Unit     string  `json:"unit"`
	N        int     `json:"n,omitempty"`
	Better   string  `json:"better"` // "higher" or "lower"
	Machine  string  `json:"machine"`
	Note     string  `json:"note,omitempty"`
}

type report struct {
	when    time.Time
	short   bool
	machine string
	figures []figure
	notes   []string
}

func newReport(short bool) *report {
	return &report{when: time.Now().UTC(), short: short, machine: machineName()}
}

func machineName() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%d cores, %s, %s/%s, %s", runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

func (r *report) add(f figure) {
	f.Machine = r.machine
	if f.Baseline != 0 {
		f.Ratio = f.Value / f.Baseline
	}
	r.figures = append(r.figures, f)
}

func (r *report) note(s string) {
	fmt.Fprintln(os.Stderr, "bench: note:", s)
	r.notes = append(r.notes, s)
}

func (r *report) fail(what string, err error) { r.note(fmt.Sprintf("%s could not run: %v", what, err)) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func (r *report) controlRows(n int, d loadResult, ref *loadResult) {
	const against = "tailscale testcontrol, same run"
	pick := func(f func(loadResult) float64) (float64, string) {
		if ref == nil {
			return 0, "none above N=1000 (testcontrol is quadratic)"
		}
		return f(*ref), against
	}
	row := func(name, unit, better string, f func(loadResult) float64, note string) {
		b, a := pick(f)
		r.add(figure{Name: name, Value: f(d), Baseline: b, Against: a, Unit: unit, N: n, Better: better, Note: note})
	}
	row("control: registrations (sustained)", "nodes/s", "higher", func(l loadResult) float64 { return l.SustainedRate }, "")
	row("control: first map p99", "ms", "lower", func(l loadResult) float64 { return ms(l.FirstMapP99) }, "")
	row("control: CPU per registration", "µs", "lower", func(l loadResult) float64 { return us(l.cpuPerReg) }, "")
	refMissing := "-"
	if ref != nil {
		refMissing = fmt.Sprint(ref.Missing)
	}
	row("control: endpoint change to every peer, p99", "ms", "lower", func(l loadResult) float64 { return ms(l.FanoutP99) },
		fmt.Sprintf("devmesh p50 %.1f ms, max %.1f ms; missing deliveries: devmesh %d, reference %s",
			ms(d.FanoutP50), ms(d.FanoutMax), d.Missing, refMissing))
	row("control: CPU per endpoint change", "µs", "lower", func(l loadResult) float64 { return us(l.cpuPerChange) }, "")
	row("control: server RSS", "MiB", "lower", func(l loadResult) float64 { return float64(l.rss) / (1 << 20) }, "")
}

func (r *report) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FIGURE\tN\tDEVMESH\tBASELINE\tRATIO\tAGAINST")
	for _, f := range r.figures {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.Name, nOrDash(f.N), num(f.Value, f.Unit), num(f.Baseline, f.Unit), ratio(f), f.Against)
	}
	tw.Flush()
	for _, n := range r.notes {
		fmt.Fprintln(w, "note:", n)
	}
}

func nOrDash(n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func num(v float64, unit string) string {
	if v == 0 {
		return "-"
	}
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f %s", v, unit)
	case v >= 10:
		return fmt.Sprintf("%.1f %s", v, unit)
	}
	return fmt.Sprintf("%.2f %s", v, unit)
}

func ratio(f figure) string {
	if f.Ratio == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", f.Ratio)
}

func (r *report) writeJSON(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(struct {
		When    time.Time `json:"when"`
		Short   bool      `json:"short"`
		Figures []figure  `json:"figures"`
		Notes   []string  `json:"notes,omitempty"`
	}{r.when, r.short, r.figures, r.notes}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func (r *report) writeDocs(path string) error {
	var b strings.Builder
	b.WriteString(docsHead)
	kind := "full"
	if r.short {
		kind = "short (BENCH_SHORT)"
	}
	fmt.Fprintf(&b, "\nLast %s run: %s, on %s.\n\n", kind, r.when.Format("2006-01-02 15:04 UTC"), r.machine)
	b.WriteString("| figure | N | devmesh | baseline | ratio | baseline is | note |\n|---|---|---|---|---|---|---|\n")
	for _, f := range r.figures {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s (%s is better) | %s | %s |\n", f.Name, nOrDash(f.N),
			num(f.Value, f.Unit), num(f.Baseline, f.Unit), ratio(f), f.Better, f.Against, f.Note)
	}
	for _, n := range r.notes {
		fmt.Fprintf(&b, "\n- %s", n)
	}
	b.WriteString("\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

const docsHead = `# Benchmarks

This page is regenerated by ` + "`make bench`" + ` from its last full run; do not
edit the table by hand. Every figure is measured beside its baseline in the
same run on the same machine, and the ratio is what to compare between
machines: absolute numbers on a shared 2-core machine are noisy.

## Running

` + "```sh" + `
make bench                 # the full suite (several minutes); writes bench/results.json and this page
BENCH_SHORT=1 make bench   # small sizes, under 3 minutes (CI runs this)
BENCH_PROFILE=/tmp/prof make bench   # also CPU and heap profiles of the coordinator under the control-plane loads (see operations.md)
go run ./bench/cmd/benchrun -rows control -nodes 1000 -docs ''   # one part, chosen sizes
go run ./bench/cmd/benchrun -rows control -nodes 5000 -docs '' -server-env GOMEMLIMIT=900MiB   # the coordinator with a memory limit
` + "```" + `

` + "`bench/results.json`" + ` has one object per figure: name, value, baseline,
ratio, unit, N and machine. Benchmarks never fail on a number.

## What is measured

- **Control plane** (` + "`bench/loadgen`" + `): N simulated nodes of one user
  (all see each other) register with a reusable auth key over TS2021,
  stream their maps and report endpoints, as tailscaled does, but without
  a data plane. Each simulated node parses every message as JSON but
  keeps only peer IDs and endpoints: the generator shares the machine
  with the server, and decoding every peer in full (as ` + "`tsp`" + ` or
  tailscaled do) would make it, not the server, what bounds the rates.
  When the mesh has been quiet for half a second, one node at a time
  reports a new endpoint, 250 ms apart, and the time until every peer's
  stream carries it is recorded (p50, p99, max and missing deliveries).
  The server's CPU time and RSS are read from /proc. The
  baseline is tailscale's own test control server
  (` + "`tstest/integration/testcontrol`" + `) under the same load, up to N=1,000
  (it sends every node a full map on every change).
- **SSH** (a coordinator without STUN and a local external workspace's
  agent): ` + "`devmesh ssh WS -- true`" + ` cold (each call a fresh in-process
  node), and 256 MiB (32 with BENCH_SHORT) each way through
  ` + "`devmesh ssh WS -- cat`" + ` and through OpenSSH with the config-ssh
  ProxyCommand (with the block's ` + "`Ciphers`" + ` line, AES-GCM first; the
  baseline keeps OpenSSH's default, ChaCha20-Poly1305), against OpenSSH's
  sshd on loopback with the same client, user and shell (a heavy rc file
  weighs on both alike). Bulk times include connecting. Beyond SSH's own
  work, devmesh's bytes cross the tunnel (WireGuard, gVisor's TCP, UDP) in
  both processes, and every wakeup costs on 2 loaded cores: the agent
  gives a command 1 MiB pipes, and both ends copy in 256 KiB chunks.
- **Speedtest**: ` + "`devmesh speedtest`" + ` both ways against raw loopback TCP
  (the machine's ceiling) and against two plain tsnet nodes on tailscale's
  test control server running the same protocol (the data plane's ceiling:
  devmesh's nodes are tsnet nodes). Then relayed: the agent restarted and
  the CLI run with ` + "`TS_DEBUG_ALWAYS_USE_DERP=1`" + `, so that every packet goes
  through the coordinator's embedded DERP relay, against the direct
  speedtest of the same run (the NAT lab's ` + "`TestRelayThroughput`" + ` measures
  the same between two hard NATs).
- **Provisioning**: a ` + "`local`" + ` template workspace's start build, from
  queued to finished (queue, terraform init and apply, reading the state,
  storing it), against a bare ` + "`terraform init && terraform apply`" + ` of the
  same template with the same provider. The note adds how long
  ` + "`devmesh create`" + ` took until the agent was connected.

## Results
`
