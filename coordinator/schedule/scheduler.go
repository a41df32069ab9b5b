// Package schedule is the coordinator's workspace scheduler: it starts
// workspaces at their autostart slots (cron specs, robfig/cron) and stops
// them when their TTL has passed since they started or were last in use
// (activity the agent reports). Every decision is taken against the
// store and acted on by a compare-and-swap of a persisted marker in the
// transaction that queues the build, so a slot or a start is acted on
// once, across restarts and coordinators sharing the database; the
// builds' one-queued-build rule backs it up.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/provision"
)

// Build transitions, as the store spells them.
const (
	transitionStart  = string(provision.TransitionStart)
	transitionStop   = string(provision.TransitionStop)
	transitionDelete = string(provision.TransitionDelete)
)

// DefaultInterval is how often the scheduler looks at the schedules.
const DefaultInterval = 30 * time.Second

// Options configure a Scheduler.
type Options struct {
	Store *store.Store // required
	// Clock is the time source (default: the wall clock).
	Clock Clock
	// Interval is the time between passes (default DefaultInterval).
	Interval time.Duration
	// Wake tells the build queue that a build was queued (optional: the
	// queue also polls).
	Wake   func()
	Logger *slog.Logger
}

// Scheduler queues the builds workspace schedules call for. Create it
// with New and run it with Run.
type Scheduler struct {
	st       *store.Store
	clock    Clock
	interval time.Duration
	wake     func()
	log      *slog.Logger
}

// New validates o; it starts nothing.
func New(o Options) (*Scheduler, error) {
	if o.Store == nil {
		return nil, errors.New("schedule: Store is required")
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Wake == nil {
		o.Wake = func() {}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{st: o.Store, clock: o.Clock, interval: o.Interval, wake: o.Wake, log: o.Logger}, nil
}

// Run makes a pass at once, which acts on what fell due while the
// coordinator was down (once: a marker per slot and per start), then one
// every Interval until ctx ends. It returns nil when ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	for {
		if err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("schedule pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.clock.After(s.interval):
		}
	}
}

// Tick makes one pass over the schedules. Passes may overlap (two
// coordinators): each due action is queued once.
func (s *Scheduler) Tick(ctx context.Context) error {
	list, err := s.st.ListSchedules(ctx)
	if err != nil {
		return fmt.Errorf("list schedules: %w", err)
	}
	now := s.clock.Now()
	var errs []error
	for _, sc := range list {
		if err := s.check(ctx, sc, now); err != nil {
			errs = append(errs, fmt.Errorf("workspace %d: %w", sc.WorkspaceID, err))
		}
	}
	return errors.Join(errs...)
}

// check acts on one workspace's schedule.
func (s *Scheduler) check(ctx context.Context, sc store.Schedule, now time.Time) error {
	ws, err := s.st.WorkspaceByID(ctx, sc.WorkspaceID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && ws.IsExternal()) {
		return nil
	}
	if err != nil {
		return err
	}
	latest, err := s.st.LatestBuild(ctx, ws.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if sc.Autostart != "" {
		// A disabled owner's workspace is not started: its agent would be
		// refused. Autostop still applies.
		owner, err := s.st.UserByID(ctx, ws.OwnerID)
		if err != nil {
			return err
		}
		if !owner.Disabled() {
			if err := s.autostart(ctx, ws, sc, latest, now); err != nil {
				return err
			}
		}
	}
	if ttl := EffectiveTTL(sc.TTL, sc.TemplateMaxTTL); ttl > 0 {
		return s.autostop(ctx, ws, sc, latest, ttl, now)
	}
	return nil
}

// autostart starts the workspace when an autostart slot after its marker
// has come. However many slots passed (the coordinator was down), one
// start is queued and the marker moves to now. A workspace already
// started (or starting) only has its marker moved; while a stop is
// queued or running nothing happens until it has finished.
func (s *Scheduler) autostart(ctx context.Context, ws store.Workspace, sc store.Schedule, latest store.Build, now time.Time) error {
	sched, err := ParseAutostart(sc.Autostart)
	if err != nil {
		s.log.Warn("workspace has an invalid autostart spec; ignored", "workspace", ws.Name, "err", err)
		return nil
	}
	next := sched.Next(sc.AutostartAfter)
	if next.IsZero() || next.After(now) || latest.Transition == transitionDelete {
		return nil
	}
	started := latest.Transition == transitionStart && latest.Status != store.BuildFailed && latest.Status != store.BuildCanceled
	if !started && !latest.Finished() {
		return nil // a stop is on its way: start after it
	}
	var b *store.Build
	if !started {
		b = &store.Build{WorkspaceID: ws.ID, Transition: transitionStart, TemplateVersionID: ws.TemplateVersionID,
			InitiatedBy: store.InitiatedByAutostart}
	}
	got, err := s.st.ClaimAutostart(ctx, ws.ID, sc.AutostartAfter, now, b)
	return s.queued(ws, got, "slot", next, err)
}

// autostop stops a started workspace once ttl has passed since its start
// build finished or its agent last reported activity, whichever is
// later. Each start build is stopped at most once.
func (s *Scheduler) autostop(ctx context.Context, ws store.Workspace, sc store.Schedule, latest store.Build, ttl time.Duration, now time.Time) error {
	if latest.Transition != transitionStart || latest.Status != store.BuildSucceeded || sc.AutostopBuildID == latest.ID {
		return nil
	}
	deadline := Deadline(latest.FinishedAt, sc.LastActivityAt, ttl)
	if now.Before(deadline) {
		return nil
	}
	got, err := s.st.ClaimAutostop(ctx, ws.ID, latest.ID, store.Build{WorkspaceID: ws.ID, Transition: transitionStop,
		TemplateVersionID: ws.TemplateVersionID, InitiatedBy: store.InitiatedByAutostop})
	return s.queued(ws, got, "deadline", deadline, err)
}

// queued logs what a claim did: a lost race or a build in the way is no
// error (the next pass looks again).
func (s *Scheduler) queued(ws store.Workspace, b store.Build, what string, at time.Time, err error) error {
	var busy *store.BuildInProgressError
	switch {
	case errors.Is(err, store.ErrConflict) || errors.As(err, &busy):
		s.log.Debug("schedule: nothing queued", "workspace", ws.Name, "why", err)
		return nil
	case err != nil:
		return err
	case b.ID == 0:
		s.log.Info("autostart slot passed while the workspace was started", "workspace", ws.Name, what, at)
		return nil
	}
	s.log.Info("scheduled build queued", "workspace", ws.Name, "transition", b.Transition, "number", b.Number,
		"initiated_by", b.InitiatedBy, what, at)
	s.wake()
	return nil
}

// Deadline is when a workspace whose start build finished at started,
// last in use at activity, stops with this TTL.
func Deadline(started, activity time.Time, ttl time.Duration) time.Time {
	base := started
	if activity.After(base) {
		base = activity
	}
	return base.Add(ttl)
}
