// Package leakcheck fails tests that leave goroutines behind.
//
// Check(t) at the top of a test compares the goroutines alive when the
// test ends (after all its other cleanups) with those alive when Check was
// called; Main(m) in a TestMain does the same for a whole test binary.
// Goroutines get a grace period to exit, since closing a connection or
// cancelling a context ends its goroutines only a moment later.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// grace is how long goroutines get to exit before they count as leaked
// (a variable for this package's tests).
var grace = 5 * time.Second

// benign are goroutines that a process starts once and keeps, not leaks
// of a test: signal delivery and the race detector / runtime helpers.
var benign = []string{
	"os/signal.signal_recv",
	"os/signal.loop",
	"runtime.ensureSigM",
	"testing.(*M).",
	"testing.runTests",
	"testing.tRunner",
	"runtime/trace.",
}

// Check fails t if goroutines started during the test are still running
// when it ends. Call it first in the test, so that its cleanup runs after
// the test's others (cleanups run last-in, first-out). Goroutines whose
// stack contains one of the ignore substrings are not reported. It must
// not be used in parallel tests, whose goroutines it cannot tell apart;
// it panics there (through t.Setenv).
func Check(t testing.TB, ignore ...string) {
	t.Helper()
	t.Setenv("DEVMESH_LEAKCHECK", "1") // panics in a parallel test
	before := ids(snapshot())
	t.Cleanup(func() {
		if t.Failed() {
			return // the failure matters more; a failed test often leaks
		}
		if leaked := wait(before, ignore); len(leaked) > 0 {
			t.Errorf("%d goroutine(s) leaked by the test:\n\n%s", len(leaked), format(leaked))
		}
	})
}

// Main runs the tests and then fails the binary if goroutines that were
// not running before the tests are still running after them. Use it as
// func TestMain(m *testing.M) { leakcheck.Main(m) }.
func Main(m interface{ Run() int }, ignore ...string) {
	before := ids(snapshot())
	code := m.Run()
	if code == 0 {
		if leaked := wait(before, ignore); len(leaked) > 0 {
			fmt.Fprintf(os.Stderr, "leakcheck: %d goroutine(s) left running after the tests:\n\n%s\n", len(leaked), format(leaked))
			code = 1
		}
	}
	os.Exit(code)
}

// goroutine is one entry of a runtime.Stack dump.
type goroutine struct {
	id    uint64
	trace string // the whole entry, header included
}

// wait returns the goroutines not in before (nor ignored) that are still
// running after grace.
func wait(before map[uint64]bool, ignore []string) []goroutine {
	deadline := time.Now().Add(grace)
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		leaked := newSince(before, ignore)
		if len(leaked) == 0 || time.Now().After(deadline) {
			return leaked
		}
		time.Sleep(delay)
	}
}

func newSince(before map[uint64]bool, ignore []string) []goroutine {
	all := snapshot()
	self := all[0].id // runtime.Stack lists the calling goroutine first
	var out []goroutine
	for _, g := range all {
		if g.id == self || before[g.id] || matches(g.trace, benign) || matches(g.trace, ignore) {
			continue
		}
		out = append(out, g)
	}
	return out
}

func matches(trace string, subs []string) bool {
	return slices.ContainsFunc(subs, func(s string) bool { return strings.Contains(trace, s) })
}

func ids(gs []goroutine) map[uint64]bool {
	m := make(map[uint64]bool, len(gs))
	for _, g := range gs {
		m[g.id] = true
	}
	return m
}

// snapshot parses runtime.Stack(all) into goroutines.
func snapshot() []goroutine {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []goroutine
	for entry := range strings.SplitSeq(strings.TrimSpace(string(buf)), "\n\n") {
		// "goroutine 12 [chan receive]:"
		f := strings.Fields(entry)
		if len(f) < 2 || f[0] != "goroutine" {
			continue
		}
		id, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			continue
		}
		out = append(out, goroutine{id: id, trace: entry})
	}
	return out
}

func format(gs []goroutine) string {
	parts := make([]string, len(gs))
	for i, g := range gs {
		parts[i] = g.trace
	}
	return strings.Join(parts, "\n\n")
}

// Mark is the set of goroutines running when it was made.
type Mark map[uint64]bool

// NewMark records the goroutines running now.
func NewMark() Mark { return ids(snapshot()) }

// Started returns the stacks of the goroutines started since m was made
// and running now, at once (no grace): for code that must start none.
// Goroutines that ended meanwhile do not count, unlike a comparison of
// runtime.NumGoroutine, which another test's exiting goroutine upsets.
func (m Mark) Started(ignore ...string) []string {
	var out []string
	for _, g := range newSince(m, ignore) {
		out = append(out, g.trace)
	}
	return out
}
