// Package builds is the coordinator's build queue: a pool of provisioner
// workers that take queued builds in order (never two of one workspace at
// once), run terraform through provision.Runner, stream its output into
// the build log, store the new state durably before a build is reported
// finished, and register the agents and metadata the state holds. The
// status of a build follows the pure state machine in Next.
package builds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/provision"
)

// Defaults for Options.
const (
	DefaultWorkers          = 2
	DefaultPollInterval     = 2 * time.Second
	DefaultLogFlushInterval = 200 * time.Millisecond
	DefaultDeleteGrace      = time.Second
	DefaultCloseTimeout     = 15 * time.Second
)

// ErrExternalWorkspace is returned for a build of a workspace that has no
// template (bring-your-own-machine): there is nothing to build.
var ErrExternalWorkspace = errors.New("the workspace has no template to build")

// Options configure a Queue.
type Options struct {
	Store  *store.Store
	Runner *provision.Runner
	// AccessURL is the coordinator URL agents connect to (DEVMESH_URL in
	// templates). Required.
	AccessURL string
	// Fingerprint pins the coordinator's self-signed certificate for
	// agents (see provision.Workspace); "" for none.
	Fingerprint string
	// Workers is how many builds run at once. Default DefaultWorkers.
	Workers int
	// RemoveAgentNodes removes the tailnet nodes of an agent that a build
	// removed (its row is already gone, so its token no longer works).
	// Optional.
	RemoveAgentNodes func(ctx context.Context, agentID int64) error
	Logger           *slog.Logger
	// PollInterval is how often idle workers look for builds queued by
	// another coordinator, and running builds for a cancel made through
	// another coordinator. Enqueue and Cancel on this Queue act at once.
	// Default DefaultPollInterval.
	PollInterval time.Duration
	// LogFlushInterval batches build log lines into the store. Default
	// DefaultLogFlushInterval.
	LogFlushInterval time.Duration
	// DeleteGrace is how long a workspace stays after its delete build
	// succeeded, so that clients following the build see it finish before
	// the workspace (and its builds) go. Default DefaultDeleteGrace.
	DeleteGrace time.Duration
	// CloseTimeout bounds how long Close waits for running builds to stop
	// (they get terraform's interrupt and are marked failed, interrupted).
	// Default DefaultCloseTimeout.
	CloseTimeout time.Duration
}

// Request asks for a build.
type Request struct {
	Workspace   store.Workspace
	Transition  provision.Transition
	InitiatorID int64 // user who asked; 0 for the system
	// TemplateVersionID is the version to build with (an update); 0 for
	// the workspace's.
	TemplateVersionID int64
	// Parameters are the parameter values, already resolved (see
	// param.Resolve); nil carries those of the workspace's latest build.
	Parameters map[string]string
}

// Queue runs builds. Create it with New, start it with Start.
type Queue struct {
	opts     Options
	st       *store.Store
	runner   *provision.Runner
	log      *slog.Logger
	wake     chan struct{} // a build was queued or became claimable
	validate chan struct{} // bounds concurrent template validations
	watch    watchers

	ctx    context.Context // cancelled by Close: stops workers and builds
	cancel context.CancelFunc
	wg     sync.WaitGroup // workers and their helpers

	mu      sync.Mutex                        // guards running
	running map[int64]context.CancelCauseFunc // build ID -> interrupt its terraform

	startOnce, closeOnce sync.Once
}

// New checks o and returns a queue. It starts nothing.
func New(o Options) (*Queue, error) {
	if o.Store == nil || o.Runner == nil || o.AccessURL == "" {
		return nil, errors.New("builds: Store, Runner and AccessURL are required")
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.LogFlushInterval <= 0 {
		o.LogFlushInterval = DefaultLogFlushInterval
	}
	if o.DeleteGrace <= 0 {
		o.DeleteGrace = DefaultDeleteGrace
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = DefaultCloseTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Queue{
		opts:     o,
		st:       o.Store,
		runner:   o.Runner,
		log:      o.Logger,
		wake:     make(chan struct{}, o.Workers),
		validate: make(chan struct{}, o.Workers),
		watch:    watchers{chans: map[int64]chan struct{}{}},
		ctx:      ctx,
		cancel:   cancel,
		running:  map[int64]context.CancelCauseFunc{},
	}, nil
}

// Start recovers from a previous process that died during builds, then
// starts the workers. Builds that were active are marked failed with
// reason "interrupted" (the workspace keeps the last state stored), and
// what their terraform left behind is killed and removed. Call it once,
// before serving requests.
func (q *Queue) Start(ctx context.Context) error {
	var err error
	q.startOnce.Do(func() {
		err = q.recover(ctx)
		if err != nil {
			return
		}
		for i := 0; i < q.opts.Workers; i++ {
			q.wg.Add(1)
			go q.work()
		}
	})
	return err
}

func (q *Queue) recover(ctx context.Context) error {
	n, err := q.runner.CleanWorkRoot()
	if err != nil {
		return fmt.Errorf("builds: %w", err)
	}
	if n > 0 {
		q.log.Warn("removed working directories of builds interrupted by a previous stop", "count", n)
	}
	interrupted, err := q.st.FailInterruptedBuilds(ctx)
	if err != nil {
		return fmt.Errorf("builds: mark interrupted builds: %w", err)
	}
	for _, b := range interrupted {
		q.log.Warn("build interrupted by a coordinator stop", "build_id", b.ID, "workspace", b.WorkspaceName, "number", b.Number, "transition", b.Transition)
		msg := "The coordinator stopped while this build ran: marked failed (interrupted). The workspace keeps the terraform state stored before the stop; resources created after it may need a new build (start, or delete) to be managed again."
		if err := q.st.AppendBuildLogs(ctx, b.ID, []store.BuildLog{{Stage: stageFinish, Level: provision.LevelError, Output: msg}}); err != nil {
			return fmt.Errorf("builds: log interrupted build: %w", err)
		}
	}
	return nil
}

// Close stops the workers. Running builds are interrupted (terraform gets
// SIGINT) and marked failed, interrupted; Close waits for that at most
// CloseTimeout, then kills what terraform is left, so that nothing it
// started outlives the queue. It is idempotent.
func (q *Queue) Close() error {
	q.closeOnce.Do(func() {
		q.cancel()
		done := make(chan struct{})
		go func() {
			q.wg.Wait()
			close(done)
		}()
		select {
		case <-done:
			return
		case <-time.After(q.opts.CloseTimeout):
		}
		n, err := q.runner.CleanWorkRoot()
		q.log.Error("builds still running after the close timeout: killed their terraform; they will be marked interrupted at the next start",
			"timeout", q.opts.CloseTimeout, "killed", n, "err", err)
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
	})
	return nil
}

// Enqueue queues a build of req.Workspace with the workspace's template
// version. It fails with ErrExternalWorkspace for a workspace without a
// template, and with an error wrapping store.ErrConflict while a delete of
// the workspace is queued or running.
func (q *Queue) Enqueue(ctx context.Context, req Request) (store.Build, error) {
	switch req.Transition {
	case provision.TransitionStart, provision.TransitionStop, provision.TransitionDelete:
	default:
		return store.Build{}, fmt.Errorf("%w: %q", provision.ErrBadTransition, req.Transition)
	}
	if req.Workspace.IsExternal() {
		return store.Build{}, ErrExternalWorkspace
	}
	version := req.TemplateVersionID
	if version == 0 {
		version = req.Workspace.TemplateVersionID
	}
	var params string
	if req.Parameters != nil {
		b, err := json.Marshal(req.Parameters)
		if err != nil {
			return store.Build{}, fmt.Errorf("builds: parameters: %w", err)
		}
		params = string(b)
	}
	b, err := q.st.EnqueueBuild(ctx, store.Build{
		WorkspaceID:       req.Workspace.ID,
		Transition:        string(req.Transition),
		TemplateVersionID: version,
		InitiatorID:       req.InitiatorID,
		Parameters:        params,
	})
	if err != nil {
		return store.Build{}, err
	}
	q.poke()
	return b, nil
}

// Wake tells the queue that a build was queued directly in the store
// (the scheduler does), so an idle worker takes it now rather than at its
// next poll.
func (q *Queue) Wake() { q.poke() }

// poke wakes an idle worker, if any.
func (q *Queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Cancel cancels a build: a pending one ends at once (canceled); a running
// one becomes canceling, and its terraform is interrupted (SIGINT, then
// killed after the runner's grace period). by names who canceled, for the
// build's reason. Canceling a canceling build changes nothing; a finished
// one fails with ErrFinished. It returns the build as it is now.
func (q *Queue) Cancel(ctx context.Context, buildID int64, by string) (store.Build, error) {
	for attempt := 0; ; attempt++ {
		b, err := q.st.BuildByID(ctx, buildID)
		if err != nil {
			return store.Build{}, err
		}
		to, err := Next(b.Status, EventCancel)
		if err != nil {
			return b, err
		}
		if to == b.Status {
			return b, nil
		}
		err = q.st.SetBuildStatus(ctx, b.ID, b.Status, to, "canceled by "+by)
		if errors.Is(err, store.ErrConflict) && attempt < 10 {
			continue // claimed or finished meanwhile: look again
		}
		if err != nil {
			return b, err
		}
		if to == store.BuildCanceling {
			q.interrupt(b.ID)
		}
		q.watch.notify(b.ID)
		q.log.Info("build canceled", "build_id", b.ID, "workspace", b.WorkspaceName, "number", b.Number, "by", by, "status", to)
		return q.st.BuildByID(ctx, buildID)
	}
}

// interrupt cancels the context of a build running here, if it is.
func (q *Queue) interrupt(buildID int64) {
	q.mu.Lock()
	cancel := q.running[buildID]
	q.mu.Unlock()
	if cancel != nil {
		cancel(errCanceled)
	}
}

// errCanceled is the cause of a build context cancelled by Cancel.
var errCanceled = errors.New("build canceled")

// Changed returns a channel that is closed at the next change of the
// build (new log lines, a new status). Get it before reading the build,
// then wait on it, so that no change is missed. Changes made by another
// coordinator are not signalled: poll as well.
func (q *Queue) Changed(buildID int64) <-chan struct{} { return q.watch.changed(buildID) }

// ValidateTemplate checks a template archive as a push must (see
// provision.Runner.Validate) and returns its variables and parameters. At
// most Workers validations run at once.
func (q *Queue) ValidateTemplate(ctx context.Context, archive []byte) (provision.Module, error) {
	select {
	case q.validate <- struct{}{}:
	case <-ctx.Done():
		return provision.Module{}, ctx.Err()
	}
	defer func() { <-q.validate }()
	return q.runner.Validate(ctx, archive)
}

// MaxArchiveBytes is the size limit on template archives.
func (q *Queue) MaxArchiveBytes() int64 { return q.runner.MaxArchiveBytes() }

// watchers lets waiters learn of changes to builds.
type watchers struct {
	mu    sync.Mutex // guards chans
	chans map[int64]chan struct{}
}

func (w *watchers) changed(id int64) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch, ok := w.chans[id]
	if !ok {
		ch = make(chan struct{})
		w.chans[id] = ch
	}
	return ch
}

func (w *watchers) notify(id int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ch, ok := w.chans[id]; ok {
		close(ch)
		delete(w.chans, id)
	}
}
