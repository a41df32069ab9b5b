package leakcheck

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that collects what Check reports.
type recorder struct {
	testing.TB
	cleanups []func()
	errors   []string
}

func (r *recorder) Helper()               {}
func (r *recorder) Setenv(string, string) {}
func (r *recorder) Failed() bool          { return false }
func (r *recorder) Cleanup(f func())      { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) end() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func withGrace(t *testing.T, d time.Duration) {
	old := grace
	grace = d
	t.Cleanup(func() { grace = old })
}

func blockedForever(stop chan struct{}) { <-stop }

func TestCheckReportsALeak(t *testing.T) {
	withGrace(t, 200*time.Millisecond)
	r := &recorder{TB: t}
	Check(r)
	stop := make(chan struct{})
	defer close(stop)
	go blockedForever(stop)
	r.end()
	if len(r.errors) != 1 || !strings.Contains(r.errors[0], "leakcheck.blockedForever") {
		t.Fatalf("leaked goroutine not reported: %q", r.errors)
	}
}

func TestCheckWaitsForExitingGoroutines(t *testing.T) {
	withGrace(t, 5*time.Second)
	r := &recorder{TB: t}
	Check(r)
	stop := make(chan struct{})
	go blockedForever(stop)
	time.AfterFunc(100*time.Millisecond, func() { close(stop) })
	r.end()
	if len(r.errors) != 0 {
		t.Fatalf("a goroutine that exits in time was reported: %q", r.errors)
	}
}

func TestCheckIgnores(t *testing.T) {
	withGrace(t, 100*time.Millisecond)
	r := &recorder{TB: t}
	Check(r, "leakcheck.blockedForever")
	stop := make(chan struct{})
	defer close(stop)
	go blockedForever(stop)
	r.end()
	if len(r.errors) != 0 {
		t.Fatalf("an ignored goroutine was reported: %q", r.errors)
	}
}

// TestMarkStarted: a goroutine started after the mark is listed; one
// that was running before it and ends meanwhile changes nothing.
func TestMarkStarted(t *testing.T) {
	old := make(chan struct{})
	oldDone := make(chan struct{})
	go func() { defer close(oldDone); blockedForever(old) }()
	m := NewMark()
	close(old)
	<-oldDone
	if got := m.Started(); len(got) != 0 {
		t.Fatalf("nothing started, Started lists:\n%s", got)
	}
	stop := make(chan struct{})
	defer close(stop)
	go blockedForever(stop)
	// Until it is scheduled, the new goroutine's stack shows only the go
	// statement's wrapper (CI caught it "runnable" there).
	var got []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if got = m.Started(); len(got) == 1 && strings.Contains(got[0], "blockedForever") {
			return
		}
	}
	t.Fatalf("Started = %q, want the one goroutine in blockedForever", got)
}
