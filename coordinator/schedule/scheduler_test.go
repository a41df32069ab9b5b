package schedule

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/devmesh/devmesh/coordinator/store"
)

// fakeClock is a Clock that moves only when told to.
type fakeClock struct {
	mu      sync.Mutex // guards now and waiters
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(now time.Time) *fakeClock { return &fakeClock{now: now} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, waiter{at: c.now.Add(d), ch: ch})
	c.fireLocked()
	return ch
}

// Advance moves the clock by d and fires the timers that came due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.fireLocked()
}

func (c *fakeClock) fireLocked() {
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = kept
}

type fixture struct {
	st    *store.Store
	clock *fakeClock
	ws    store.Workspace
	tpl   store.Template
}

// newFixture opens a store with a user, a template and one workspace;
// the fake clock starts at now.
func newFixture(t *testing.T, now time.Time) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "devmesh.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	u, err := st.CreateUser(ctx, "alice", "h", store.RoleMember)
	if err != nil {
		t.Fatal(err)
	}
	tpl, v, err := st.PushTemplateVersion(ctx, "base", store.TemplateVersion{Archive: []byte("a"), ArchiveHash: "a", CreatedBy: u.ID})
	if err != nil {
		t.Fatal(err)
	}
	ws, err := st.CreateWorkspace(ctx, store.Workspace{UUID: "u1", OwnerID: u.ID, Name: "dev", TemplateID: tpl.ID, TemplateVersionID: v.ID})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{st: st, clock: newFakeClock(now), ws: ws, tpl: tpl}
}

func (f *fixture) scheduler(t *testing.T) *Scheduler {
	t.Helper()
	s, err := New(Options{Store: f.st, Clock: f.clock, Interval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// build queues a build by a user and runs it to status.
func (f *fixture) build(t *testing.T, transition, status string) store.Build {
	t.Helper()
	ctx := context.Background()
	b, err := f.st.EnqueueBuild(ctx, store.Build{WorkspaceID: f.ws.ID, Transition: transition, TemplateVersionID: f.ws.TemplateVersionID})
	if err != nil {
		t.Fatal(err)
	}
	f.finish(t, b, status)
	return b
}

// finish runs a pending build to status.
func (f *fixture) finish(t *testing.T, b store.Build, status string) {
	t.Helper()
	ctx := context.Background()
	got, err := f.st.ClaimBuild(ctx)
	if err != nil || got.ID != b.ID {
		t.Fatalf("claim build %d: got %d, %v", b.ID, got.ID, err)
	}
	if err := f.st.SetBuildStatus(ctx, b.ID, store.BuildRunning, status, ""); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) setSchedule(t *testing.T, spec string, ttl time.Duration) {
	t.Helper()
	if err := f.st.SetWorkspaceSchedule(context.Background(), f.ws.ID, spec, ttl, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) builds(t *testing.T) []store.Build {
	t.Helper()
	list, err := f.st.ListBuilds(context.Background(), f.ws.ID)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func (f *fixture) tick(t *testing.T, s *Scheduler) {
	t.Helper()
	if err := s.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// scheduled returns the builds the schedule queued.
func scheduled(list []store.Build) []store.Build {
	var out []store.Build
	for _, b := range list {
		if b.InitiatedBy != "" {
			out = append(out, b)
		}
	}
	return out
}

// berlinMonday0700 is Monday 7 December 2026, 07:00 in Berlin (06:00 UTC).
var berlinMonday0700 = time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)

const weekdays0830 = "CRON_TZ=Europe/Berlin 30 8 * * 1-5"

func TestAutostartDue(t *testing.T) {
	f := newFixture(t, berlinMonday0700)
	f.build(t, "start", store.BuildSucceeded)
	f.build(t, "stop", store.BuildSucceeded)
	f.setSchedule(t, weekdays0830, 0)
	s := f.scheduler(t)

	f.clock.Advance(89 * time.Minute) // 08:29 Berlin
	f.tick(t, s)
	if got := scheduled(f.builds(t)); len(got) != 0 {
		t.Fatalf("before the slot: %d scheduled builds", len(got))
	}
	f.clock.Advance(time.Minute) // 08:30
	f.tick(t, s)
	f.tick(t, s)
	got := scheduled(f.builds(t))
	if len(got) != 1 || got[0].Transition != "start" || got[0].InitiatedBy != store.InitiatedByAutostart || got[0].InitiatorID != 0 {
		t.Fatalf("at the slot: want one start by autostart, got %+v", got)
	}
	// The start runs, the user stops the workspace again the same day:
	// the 08:30 slot is spent, the next is Tuesday's.
	f.finish(t, got[0], store.BuildSucceeded)
	f.build(t, "stop", store.BuildSucceeded)
	f.clock.Advance(12 * time.Hour)
	f.tick(t, s)
	if got := scheduled(f.builds(t)); len(got) != 1 {
		t.Fatalf("the same slot started the workspace twice: %+v", got)
	}
	f.clock.Advance(12 * time.Hour) // Tuesday 08:30
	f.tick(t, s)
	if got := scheduled(f.builds(t)); len(got) != 2 {
		t.Fatalf("Tuesday's slot: want a second scheduled start, got %+v", got)
	}
}

func TestAutostartSkipsStartedWorkspace(t *testing.T) {
	f := newFixture(t, berlinMonday0700)
	f.build(t, "start", store.BuildSucceeded)
	f.setSchedule(t, weekdays0830, 0)
	s := f.scheduler(t)
	f.clock.Advance(90 * time.Minute)
	f.tick(t, s)
	// Stopped after the slot passed while it was running: no late start.
	f.build(t, "stop", store.BuildSucceeded)
	f.tick(t, s)
	if got := scheduled(f.builds(t)); len(got) != 0 {
		t.Fatalf("a started workspace was started by its schedule: %+v", got)
	}
}

func TestAutostartSkipsDisabledOwner(t *testing.T) {
	f := newFixture(t, berlinMonday0700)
	f.build(t, "start", store.BuildSucceeded)
	f.build(t, "stop", store.BuildSucceeded)
	f.setSchedule(t, weekdays0830, 0)
	if _, err := f.st.SetUserDisabled(context.Background(), f.ws.OwnerID, true); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Hour)
	f.tick(t, f.scheduler(t))
	if got := scheduled(f.builds(t)); len(got) != 0 {
		t.Fatalf("a disabled owner's workspace was started: %+v", got)
	}
}

func TestAutostopDueAndActivity(t *testing.T) {
	f := newFixture(t, time.Now())
	start := f.build(t, "start", store.BuildSucceeded)
	f.setSchedule(t, "", time.Hour)
	s := f.scheduler(t)
	ctx := context.Background()

	f.clock.Advance(50 * time.Minute)
	f.tick(t, s)
	if err := f.st.RecordWorkspaceActivity(ctx, f.ws.ID, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(20 * time.Minute) // 70 minutes after the start, 20 after the activity
	f.tick(t, s)
	if got := scheduled(f.builds(t)); len(got) != 0 {
		t.Fatalf("activity did not push the stop back: %+v", got)
	}
	f.clock.Advance(41 * time.Minute) // 61 minutes after the activity
	f.tick(t, s)
	f.tick(t, s)
	got := scheduled(f.builds(t))
	if len(got) != 1 || got[0].Transition != "stop" || got[0].InitiatedBy != store.InitiatedByAutostop {
		t.Fatalf("want one stop by autostop, got %+v", got)
	}
	sc, err := f.st.WorkspaceSchedule(ctx, f.ws.ID)
	if err != nil || sc.AutostopBuildID != start.ID {
		t.Fatalf("autostop marker: %+v, %v", sc, err)
	}
	f.finish(t, got[0], store.BuildSucceeded)
	f.clock.Advance(time.Hour)
	f.tick(t, s)
	if got := scheduled(f.builds(t)); len(got) != 1 {
		t.Fatalf("a stopped workspace was stopped again: %+v", got)
	}
}

func TestTemplateMaxTTLApplies(t *testing.T) {
	f := newFixture(t, time.Now())
	f.build(t, "start", store.BuildSucceeded)
	if err := f.st.SetTemplateSchedule(context.Background(), f.tpl.ID, 0, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	s := f.scheduler(t)
	f.clock.Advance(119 * time.Minute)
	f.tick(t, s)
	if got := scheduled(f.builds(t)); len(got) != 0 {
		t.Fatalf("stopped before the template's maximum TTL: %+v", got)
	}
	f.clock.Advance(2 * time.Minute)
	f.tick(t, s)
	if got := scheduled(f.builds(t)); len(got) != 1 || got[0].Transition != "stop" {
		t.Fatalf("the template's maximum TTL did not stop the workspace: %+v", got)
	}
}

// TestRestartReconciliation: slots and a deadline pass while no
// coordinator runs; each of two restarts makes its first pass at once,
// and together they queue exactly one start and, later, one stop.
func TestRestartReconciliation(t *testing.T) {
	f := newFixture(t, berlinMonday0700)
	f.build(t, "start", store.BuildSucceeded)
	f.build(t, "stop", store.BuildSucceeded)
	f.setSchedule(t, weekdays0830, 0)
	f.clock.Advance(3 * 24 * time.Hour) // down over three slots

	for restart := 0; restart < 2; restart++ {
		runFor(t, f)
	}
	got := scheduled(f.builds(t))
	if len(got) != 1 || got[0].Transition != "start" {
		t.Fatalf("want exactly one start after the restarts, got %+v", got)
	}
	f.finish(t, got[0], store.BuildSucceeded)

	// The TTL passes while down.
	f.setSchedule(t, weekdays0830, time.Hour)
	f.clock = newFakeClock(time.Now().Add(3 * time.Hour))
	for restart := 0; restart < 2; restart++ {
		runFor(t, f)
	}
	got = scheduled(f.builds(t))
	if len(got) != 2 || got[1].Transition != "stop" {
		t.Fatalf("want one stop after the restarts, got %+v", got)
	}
}

// runFor runs a scheduler as the coordinator does until its first pass
// has been made, then stops it.
func runFor(t *testing.T, f *fixture) {
	t.Helper()
	s := f.scheduler(t)
	passed := make(chan struct{}, 1)
	s.wake = func() {}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	// Run's first pass happens before it asks the clock for a timer.
	go func() {
		for {
			f.clock.mu.Lock()
			n := len(f.clock.waiters)
			f.clock.mu.Unlock()
			if n > 0 {
				passed <- struct{}{}
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	select {
	case <-passed:
	case <-time.After(10 * time.Second):
		t.Fatal("the scheduler made no pass")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	f.clock.mu.Lock()
	f.clock.waiters = nil
	f.clock.mu.Unlock()
}

// TestConcurrentTicksQueueOnce: passes of two schedulers (two
// coordinators on one database) race; each due action is queued once,
// even when the first build finishes between their passes.
func TestConcurrentTicksQueueOnce(t *testing.T) {
	f := newFixture(t, berlinMonday0700)
	f.build(t, "start", store.BuildSucceeded)
	f.build(t, "stop", store.BuildSucceeded)
	f.setSchedule(t, weekdays0830, 0)
	a, b := f.scheduler(t), f.scheduler(t)
	f.clock.Advance(2 * time.Hour)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			if err := s.Tick(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got := scheduled(f.builds(t))
	if len(got) != 1 {
		t.Fatalf("concurrent passes queued %d starts, want 1: %+v", len(got), got)
	}
	// The start finishes and the user stops the workspace before the
	// other coordinator's pass, which read the schedule earlier: a stale
	// read of the marker must not start it again.
	stale, err := f.st.WorkspaceSchedule(context.Background(), f.ws.ID)
	if err != nil {
		t.Fatal(err)
	}
	stale.AutostartAfter = berlinMonday0700
	f.finish(t, got[0], store.BuildSucceeded)
	f.build(t, "stop", store.BuildSucceeded)
	latest, err := f.st.LatestBuild(context.Background(), f.ws.ID)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := f.st.WorkspaceByID(context.Background(), f.ws.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.autostart(context.Background(), ws, stale, latest, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if got := scheduled(f.builds(t)); len(got) != 1 {
		t.Fatalf("a stale pass started the workspace again: %+v", got)
	}
}
