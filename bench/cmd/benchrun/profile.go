package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// profileWindow is the length of each CPU profile the profiler fetches
// back to back; a phase's profiles are merged afterwards. Phase edges
// are this precise.
const profileWindow = 1

// loadPhases names the load phase that follows each loadgen sample
// point ("" stops profiling).
var loadPhases = map[string]string{"idle": "register", "registered": "mesh", "meshed": "fanout", "fanout": ""}

// profiler saves CPU and heap profiles of a coordinator under load
// (BENCH_PROFILE=dir): from its metrics listener it fetches CPU profiles
// of profileWindow seconds back to back, each labelled with the phase
// it started in, and a heap profile at each phase's end. finish merges
// each phase's CPU profiles (go tool pprof -proto) and writes their top
// functions beside them.
type profiler struct {
	base   string // the metrics listener's URL
	prefix string // dir/label-

	mu    sync.Mutex // guards phase and files
	phase string
	files map[string][]string

	cancel context.CancelFunc
	done   chan struct{}
}

func startProfiler(metricsAddr, dir, label string) (*profiler, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &profiler{base: "http://" + metricsAddr, prefix: filepath.Join(dir, label+"-"), files: map[string][]string{},
		cancel: cancel, done: make(chan struct{})}
	go p.loop(ctx)
	return p, nil
}

func (p *profiler) loop(ctx context.Context) {
	defer close(p.done)
	for i := 0; ctx.Err() == nil; i++ {
		p.mu.Lock()
		phase := p.phase
		p.mu.Unlock()
		if phase == "" {
			if !sleepCtx(ctx, 100*time.Millisecond) {
				return
			}
			continue
		}
		file := fmt.Sprintf("%scpu-%s-%03d.pb.gz", p.prefix, phase, i)
		if err := p.fetch(ctx, fmt.Sprintf("/debug/pprof/profile?seconds=%d", profileWindow), file); err != nil {
			if ctx.Err() == nil {
				fmt.Fprintf(os.Stderr, "  profile: %v\n", err)
				sleepCtx(ctx, time.Second)
			}
			continue
		}
		p.mu.Lock()
		p.files[phase] = append(p.files[phase], file)
		p.mu.Unlock()
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// sample is loadgen's Sample hook: at each sample point the heap is
// saved and the CPU profiles switch to the next phase.
func (p *profiler) sample(point string) {
	if point != "idle" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.fetch(ctx, "/debug/pprof/heap", p.prefix+"heap-"+point+".pb.gz"); err != nil {
			fmt.Fprintf(os.Stderr, "  heap profile: %v\n", err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase = loadPhases[point]
}

func (p *profiler) fetch(ctx context.Context, path, file string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", p.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return fmt.Errorf("%s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// stop ends profiling (before the coordinator stops). It is idempotent.
func (p *profiler) stop() {
	p.cancel()
	<-p.done
}

// finish stops profiling, merges each phase's CPU profiles into
// PREFIXcpu-PHASE.pb.gz with its top functions in PREFIXcpu-PHASE.top.txt,
// and prints the first lines of each top to w. (The first `go tool
// pprof` of a Go installation builds pprof, which takes a while.)
func (p *profiler) finish(w io.Writer) {
	p.stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, phase := range []string{"register", "mesh", "fanout"} {
		files := p.files[phase]
		if len(files) == 0 {
			continue
		}
		merged := p.prefix + "cpu-" + phase + ".pb.gz"
		if err := goTool(merged, append([]string{"pprof", "-proto"}, files...)...); err != nil {
			fmt.Fprintf(w, "  merge %s profiles: %v\n", phase, err)
			continue
		}
		for _, f := range files {
			os.Remove(f)
		}
		fmt.Fprintf(w, "  CPU profile, %s phase: %s\n", phase, merged)
		for _, view := range []struct{ suffix, flag string }{{"top", "-flat"}, {"cum", "-cum"}} {
			top := p.prefix + "cpu-" + phase + "." + view.suffix + ".txt"
			if err := goTool(top, "pprof", "-top", view.flag, "-nodecount=30", merged); err != nil {
				fmt.Fprintf(w, "  top of %s: %v\n", phase, err)
				continue
			}
			b, _ := os.ReadFile(top)
			fmt.Fprintf(w, "    %s\n", strings.Join(topLines(string(b), 12), "\n    "))
		}
	}
}

// topLines returns the table of a `go tool pprof -top` output: its
// summary line, the column header and the first n rows.
func topLines(out string, n int) []string {
	var lines []string
	rows := -1
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, "Duration:"):
			lines = append(lines, l)
		case strings.Contains(l, "flat%") && strings.Contains(l, "cum%"):
			lines, rows = append(lines, l), 0
		case rows >= 0 && rows < n && strings.TrimSpace(l) != "":
			lines = append(lines, l)
			rows++
		}
	}
	return lines
}

// goTool runs `go tool ARGS...` with its output in file.
func goTool(file string, args ...string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command("go", append([]string{"tool"}, args...)...)
	cmd.Stdout = f
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go tool %s: %v: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
