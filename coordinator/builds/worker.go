package builds

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/provision"
)

// storeTimeout bounds the store writes that finish a build; they run even
// while the queue closes.
const storeTimeout = 30 * time.Second

// work is one worker: it claims builds until the queue closes, sleeping
// between polls when there is nothing to do.
func (q *Queue) work() {
	defer q.wg.Done()
	tick := time.NewTicker(q.opts.PollInterval)
	defer tick.Stop()
	for {
		b, err := q.st.ClaimBuild(q.ctx)
		switch {
		case err == nil:
			q.watch.notify(b.ID)
			q.run(b)
			continue
		case q.ctx.Err() != nil:
			return
		case !errors.Is(err, store.ErrNotFound):
			q.log.Error("claim build", "err", err)
		}
		select {
		case <-q.ctx.Done():
			return
		case <-q.wake:
		case <-tick.C:
		}
	}
}

// job is what a build needs, loaded from the store.
type job struct {
	ws      store.Workspace
	owner   store.User
	version store.TemplateVersion // with its archive
	state   []byte
	vars    map[string]string
	params  map[string]string // the build's parameter values
	rotate  bool              // the workspace has no agents: mint new tokens (see provision.BuildRequest)
}

func (q *Queue) load(ctx context.Context, b store.Build) (job, error) {
	var j job
	var err error
	if j.ws, err = q.st.WorkspaceByID(ctx, b.WorkspaceID); err != nil {
		return j, fmt.Errorf("load workspace: %w", err)
	}
	if j.owner, err = q.st.UserByID(ctx, j.ws.OwnerID); err != nil {
		return j, fmt.Errorf("load workspace owner: %w", err)
	}
	if b.TemplateVersionID == 0 {
		return j, ErrExternalWorkspace
	}
	if j.version, err = q.st.TemplateVersionByID(ctx, b.TemplateVersionID, true); err != nil {
		return j, fmt.Errorf("load template version: %w", err)
	}
	if j.state, err = q.st.WorkspaceState(ctx, j.ws.ID); err != nil {
		return j, fmt.Errorf("load terraform state: %w", err)
	}
	if err := json.Unmarshal([]byte(j.ws.Variables), &j.vars); err != nil {
		return j, fmt.Errorf("workspace variables: %w", err)
	}
	if err := json.Unmarshal([]byte(b.Parameters), &j.params); err != nil {
		return j, fmt.Errorf("build parameters: %w", err)
	}
	agents, err := q.st.ListAgents(ctx, j.ws.ID)
	if err != nil {
		return j, fmt.Errorf("load agents: %w", err)
	}
	j.rotate = len(agents) == 0 && len(j.state) > 0
	return j, nil
}

// run runs one claimed build to its end.
func (q *Queue) run(b store.Build) {
	start := time.Now()
	ctx, untrack := q.track(b.ID)
	defer untrack()
	logs := q.newBuildLog(b.ID)
	defer logs.close()
	log := q.log.With("build_id", b.ID, "workspace", b.WorkspaceName, "number", b.Number, "transition", b.Transition)
	log.Info("build started")

	j, res, err := q.execute(ctx, b, logs)
	sctx, scancel := context.WithTimeout(context.WithoutCancel(q.ctx), storeTimeout)
	defer scancel()
	// The state first: it is durable before anyone hears the build ended.
	if len(res.State) > 0 && !bytes.Equal(res.State, j.state) {
		if serr := q.st.SetWorkspaceState(sctx, b.WorkspaceID, res.State); serr != nil {
			log.Error("store terraform state", "err", serr)
			err = errors.Join(err, fmt.Errorf("could not store the new terraform state: %w", serr))
		}
	}
	ev, reason := q.outcome(ctx, err)
	if err != nil {
		logs.printf(stageFinish, provision.LevelError, "devmesh: %s", firstLines(err.Error(), 20))
	}
	logs.flush()
	status, err := q.finish(sctx, b, ev, reason, res, logs)
	if err != nil {
		log.Error("finish build", "err", err)
		return
	}
	log.Info("build finished", "status", status, "reason", reason, "took", time.Since(start).Round(time.Millisecond))
	if status == store.BuildSucceeded && b.Transition == string(provision.TransitionDelete) {
		q.deleteWorkspace(sctx, b, log)
	}
}

// track gives a running build a context that Cancel (here, or through the
// store from another coordinator) and Close interrupt. untrack releases it.
func (q *Queue) track(buildID int64) (ctx context.Context, untrack func()) {
	ctx, cancel := context.WithCancelCause(q.ctx)
	q.mu.Lock()
	q.running[buildID] = cancel
	q.mu.Unlock()
	stopPoll := q.pollCancel(ctx, buildID, cancel)
	return ctx, func() {
		stopPoll()
		q.mu.Lock()
		delete(q.running, buildID)
		q.mu.Unlock()
		cancel(nil)
	}
}

// execute loads what build b needs and runs terraform.
func (q *Queue) execute(ctx context.Context, b store.Build, logs *buildLog) (job, provision.BuildResult, error) {
	j, err := q.load(ctx, b)
	if err != nil {
		return j, provision.BuildResult{}, err
	}
	logs.printf(provision.StageSetup, provision.LevelInfo, "devmesh: build #%d of workspace %q: %s, template version %d, owner %s",
		b.Number, j.ws.Name, b.Transition, j.version.Version, j.owner.Username)
	if j.rotate && b.Transition == string(provision.TransitionStart) {
		logs.printf(provision.StageSetup, provision.LevelInfo, "devmesh: the workspace has no registered agents: they get new tokens")
	}
	res, err := q.runner.Build(ctx, provision.BuildRequest{
		Archive:           j.version.Archive,
		Transition:        provision.Transition(b.Transition),
		State:             j.state,
		Variables:         j.vars,
		Parameters:        j.params,
		Workspace:         provision.Workspace{ID: j.ws.UUID, Name: j.ws.Name, Owner: j.owner.Username, AccessURL: q.opts.AccessURL, Fingerprint: q.opts.Fingerprint},
		RotateAgentTokens: j.rotate,
		Log:               logs.add,
	})
	return j, res, err
}

// outcome turns a build's error into its event and reason.
func (q *Queue) outcome(ctx context.Context, err error) (Event, string) {
	switch {
	case err == nil:
		return EventSucceed, ""
	case q.ctx.Err() != nil:
		return EventInterrupt, store.ReasonInterrupted
	case errors.Is(context.Cause(ctx), errCanceled):
		return EventFail, "canceled"
	}
	return EventFail, reasonOf(err)
}

// reasonOf sums up a build error in one line.
func reasonOf(err error) string {
	var te *provision.TerraformError
	if errors.As(err, &te) {
		s := fmt.Sprintf("terraform %s failed", te.Stage)
		if len(te.Diagnostics) > 0 {
			s += ": " + te.Diagnostics[0].Summary
		} else if out := strings.TrimSpace(te.Output); out != "" {
			s += ": " + firstLines(out, 1)
		}
		return truncate(s, 300)
	}
	return truncate(firstLines(err.Error(), 1), 300)
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, "\n")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// finish records the build's end: its final log line, its status, and on
// success what it changed about the workspace's agents and metadata, then
// removes the tailnet nodes of agents that are gone. It retries when a
// cancel races with it.
func (q *Queue) finish(ctx context.Context, b store.Build, ev Event, reason string, res provision.BuildResult, logs *buildLog) (string, error) {
	var changes store.BuildOutcome
	if ev == EventSucceed {
		q.applyResult(&changes, b, res, logs)
	}
	for attempt := 0; ; attempt++ {
		cur, err := q.st.BuildByID(ctx, b.ID)
		if err != nil {
			return "", err
		}
		to, err := Next(cur.Status, ev)
		if err != nil {
			return "", err
		}
		o := store.BuildOutcome{From: cur.Status, To: to, Reason: reason}
		switch to {
		case store.BuildCanceled:
			o.Reason = cur.Reason // "canceled by ..."
		case store.BuildSucceeded:
			o.SetAgents, o.Agents, o.SetMetadata, o.Metadata = changes.SetAgents, changes.Agents, changes.SetMetadata, changes.Metadata
		}
		logs.printf(stageFinish, levelFor(to), "devmesh: build %s%s in %v", to, reasonSuffix(o.Reason),
			time.Since(cur.StartedAt).Round(100*time.Millisecond))
		logs.flush()
		removed, err := q.st.FinishBuild(ctx, b.ID, b.WorkspaceID, o)
		if errors.Is(err, store.ErrConflict) && attempt < 10 {
			continue
		}
		if err != nil {
			return "", err
		}
		q.removeNodes(ctx, removed)
		q.watch.notify(b.ID)
		return to, nil
	}
}

func levelFor(status string) string {
	if status == store.BuildSucceeded {
		return provision.LevelInfo
	}
	return provision.LevelError
}

func reasonSuffix(reason string) string {
	if reason == "" {
		return ""
	}
	return " (" + reason + ")"
}

// removeNodes takes removed agents off the tailnet.
func (q *Queue) removeNodes(ctx context.Context, agents []store.Agent) {
	if q.opts.RemoveAgentNodes == nil {
		return
	}
	for _, a := range agents {
		if err := q.opts.RemoveAgentNodes(ctx, a.ID); err != nil {
			q.log.Error("remove tailnet nodes of a removed agent", "agent_id", a.ID, "err", err)
		}
	}
}

// deleteWorkspace removes a workspace whose delete build succeeded, after
// DeleteGrace (so followers see the build end).
func (q *Queue) deleteWorkspace(ctx context.Context, b store.Build, log *slog.Logger) {
	select {
	case <-time.After(q.opts.DeleteGrace):
	case <-q.ctx.Done():
	}
	agents, err := q.st.ListAgents(ctx, b.WorkspaceID)
	if err == nil {
		q.removeNodes(ctx, agents)
		err = q.st.DeleteWorkspace(ctx, b.WorkspaceID)
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		q.log.Error("delete workspace after its delete build", "workspace", b.WorkspaceName, "err", err)
		return
	}
	q.watch.notify(b.ID)
	log.Info("workspace deleted")
}

// pollCancel watches the store for a cancel of the build made through
// another coordinator, and interrupts the build when it sees one. It
// returns a function that stops watching.
func (q *Queue) pollCancel(ctx context.Context, buildID int64, cancel context.CancelCauseFunc) func() {
	done := make(chan struct{})
	q.wg.Add(1)
	go func() {
		defer q.wg.Done()
		tick := time.NewTicker(q.opts.PollInterval)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if b, err := q.st.BuildByID(ctx, buildID); err == nil && b.Status == store.BuildCanceling {
				cancel(errCanceled)
				return
			}
		}
	}()
	return func() { close(done) }
}
