package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Build statuses. Which status may follow which is decided by
// coordinator/builds; the store only applies changes atomically.
const (
	BuildPending   = "pending"
	BuildRunning   = "running"
	BuildSucceeded = "succeeded"
	BuildFailed    = "failed"
	BuildCanceling = "canceling"
	BuildCanceled  = "canceled"
)

// ReasonInterrupted is the reason of a build that was running when its
// coordinator stopped.
const ReasonInterrupted = "interrupted"

// Build is one terraform run for a workspace. Number counts the
// workspace's builds from 1. TemplateVersion, InitiatorName and
// WorkspaceName are read from the joined rows.
type Build struct {
	ID                int64
	WorkspaceID       int64
	WorkspaceName     string
	Number            int
	Transition        string // start, stop, delete
	TemplateVersionID int64
	TemplateVersion   int
	Status            string
	Reason            string
	InitiatorID       int64
	InitiatorName     string
	// InitiatedBy is what queued the build when no user did: "" (the
	// user InitiatorID), InitiatedByAutostart or InitiatedByAutostop.
	InitiatedBy string
	// Parameters is the JSON object of the parameter values the build runs
	// with; EnqueueBuild fills it from the previous build when empty.
	Parameters string
	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
}

// Active reports whether the build is running or being canceled.
func (b Build) Active() bool { return b.Status == BuildRunning || b.Status == BuildCanceling }

// Finished reports whether the build has ended, one way or another.
func (b Build) Finished() bool {
	return b.Status == BuildSucceeded || b.Status == BuildFailed || b.Status == BuildCanceled
}

const buildCols = `b.id, b.workspace_id, w.name, b.number, b.transition, COALESCE(b.template_version_id, 0),
	COALESCE(v.version, 0), b.status, b.reason, COALESCE(b.initiator_id, 0), COALESCE(u.username, ''),
	b.created_at, b.started_at, b.finished_at, b.parameters, b.initiated_by`

const buildFrom = ` FROM builds b JOIN workspaces w ON w.id = b.workspace_id
	LEFT JOIN template_versions v ON v.id = b.template_version_id
	LEFT JOIN users u ON u.id = b.initiator_id`

func scanBuild(row rowScanner) (Build, error) {
	var b Build
	var c, s, f int64
	err := row.Scan(&b.ID, &b.WorkspaceID, &b.WorkspaceName, &b.Number, &b.Transition, &b.TemplateVersionID,
		&b.TemplateVersion, &b.Status, &b.Reason, &b.InitiatorID, &b.InitiatorName, &c, &s, &f, &b.Parameters, &b.InitiatedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return Build{}, ErrNotFound
	}
	b.CreatedAt, b.StartedAt, b.FinishedAt = fromMillis(c), fromMillis(s), fromMillis(f)
	return b, err
}

// BuildInProgressError is EnqueueBuild's refusal of a start or stop while
// the workspace has one pending or active: one at a time per workspace.
type BuildInProgressError struct {
	Build Build // the build in the way (zero if a concurrent insert won)
}

func (e *BuildInProgressError) Error() string {
	if e.Build.ID == 0 {
		return "the workspace already has a build queued or running"
	}
	return fmt.Sprintf("the workspace already has build #%d (%s) %s", e.Build.Number, e.Build.Transition, e.Build.Status)
}

// EnqueueBuild adds a pending build for b.WorkspaceID with the next build
// number. A build without Parameters carries those of the workspace's
// latest build; the workspace's template version becomes the build's. It
// fails with ErrConflict while a delete of the workspace is pending or
// active: nothing can follow it; and with a *BuildInProgressError for a
// start or stop while another start or stop is pending or active (a
// delete may queue behind one).
func (s *Store) EnqueueBuild(ctx context.Context, b Build) (Build, error) {
	var id int64
	err := s.tx(ctx, func(tx *sql.Tx) (err error) {
		id, err = enqueueBuildTx(ctx, tx, b)
		return err
	})
	if isUniqueViolation(err) {
		return Build{}, &BuildInProgressError{} // builds_one_queued: a concurrent insert won
	}
	if err != nil {
		return Build{}, err
	}
	return s.BuildByID(ctx, id)
}

// enqueueBuildTx is EnqueueBuild within tx; it returns the new build's ID.
func enqueueBuildTx(ctx context.Context, tx *sql.Tx, b Build) (int64, error) {
	var id int64
	err := func() error {
		var deleting int
		err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM builds WHERE workspace_id = ? AND transition = 'delete'
			AND status IN (?, ?, ?)`, b.WorkspaceID, BuildPending, BuildRunning, BuildCanceling).Scan(&deleting)
		if err != nil {
			return err
		}
		if deleting > 0 {
			return fmt.Errorf("the workspace is being deleted: %w", ErrConflict)
		}
		if b.Transition != "delete" {
			cur, err := scanBuild(tx.QueryRowContext(ctx, `SELECT `+buildCols+buildFrom+` WHERE b.workspace_id = ?
				AND b.transition <> 'delete' AND b.status IN (?, ?, ?) ORDER BY b.id LIMIT 1`,
				b.WorkspaceID, BuildPending, BuildRunning, BuildCanceling))
			if err == nil {
				return &BuildInProgressError{Build: cur}
			}
			if !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		var next int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(number), 0) + 1 FROM builds WHERE workspace_id = ?`, b.WorkspaceID).Scan(&next); err != nil {
			return err
		}
		params := b.Parameters
		if params == "" {
			err := tx.QueryRowContext(ctx, `SELECT parameters FROM builds WHERE workspace_id = ? ORDER BY number DESC LIMIT 1`,
				b.WorkspaceID).Scan(&params)
			if errors.Is(err, sql.ErrNoRows) {
				params, err = "{}", nil
			}
			if err != nil {
				return err
			}
		}
		if b.TemplateVersionID != 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE workspaces SET template_version_id = ? WHERE id = ?`, b.TemplateVersionID, b.WorkspaceID); err != nil {
				return err
			}
		}
		return tx.QueryRowContext(ctx, `INSERT INTO builds
			(workspace_id, number, transition, template_version_id, status, initiator_id, parameters, created_at, initiated_by)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			b.WorkspaceID, next, b.Transition, nullID(b.TemplateVersionID), BuildPending, nullID(b.InitiatorID), params, nowMillis(),
			b.InitiatedBy).Scan(&id)
	}()
	return id, err
}

// ClaimBuild marks the oldest pending build whose workspace has no active
// build as running and returns it; ErrNotFound if there is none. Two
// callers never get the same build, and a workspace never has two active
// builds (the builds_one_active index guards this across coordinators).
func (s *Store) ClaimBuild(ctx context.Context) (Build, error) {
	var id int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT b.id FROM builds b WHERE b.status = ? AND NOT EXISTS (
			SELECT 1 FROM builds a WHERE a.workspace_id = b.workspace_id AND a.status IN (?, ?))
			ORDER BY b.id LIMIT 1`, BuildPending, BuildRunning, BuildCanceling).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE builds SET status = ?, started_at = ? WHERE id = ? AND status = ?`,
			BuildRunning, nowMillis(), id, BuildPending)
		return affectedOne(res, err)
	})
	if isUniqueViolation(err) {
		return Build{}, ErrNotFound // another coordinator claimed one of this workspace's builds
	}
	if err != nil {
		return Build{}, err
	}
	return s.BuildByID(ctx, id)
}

// SetBuildStatus changes a build's status from `from` to `to` with reason,
// only if its status is still `from`: ErrConflict otherwise, ErrNotFound
// if there is no such build. A finished status also sets finished_at.
func (s *Store) SetBuildStatus(ctx context.Context, id int64, from, to, reason string) error {
	b := Build{Status: to}
	var finished int64
	if b.Finished() {
		finished = nowMillis()
	}
	res, err := s.db.ExecContext(ctx, `UPDATE builds SET status = ?, reason = ?, finished_at = ? WHERE id = ? AND status = ?`,
		to, reason, finished, id, from)
	if err := affectedOne(res, err); !errors.Is(err, ErrNotFound) {
		return err
	}
	if _, err := s.BuildByID(ctx, id); err != nil {
		return err
	}
	return fmt.Errorf("build %d is no longer %s: %w", id, from, ErrConflict)
}

// FailInterruptedBuilds marks every active build failed with
// ReasonInterrupted and returns them as they were. The build queue calls
// it at startup: whatever ran then died with the previous process.
func (s *Store) FailInterruptedBuilds(ctx context.Context) ([]Build, error) {
	var out []Build
	err := s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+buildCols+buildFrom+` WHERE b.status IN (?, ?) ORDER BY b.id`,
			BuildRunning, BuildCanceling)
		if err != nil {
			return err
		}
		for rows.Next() {
			b, err := scanBuild(rows)
			if err != nil {
				rows.Close()
				return err
			}
			out = append(out, b)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE builds SET status = ?, reason = ?, finished_at = ? WHERE status IN (?, ?)`,
			BuildFailed, ReasonInterrupted, nowMillis(), BuildRunning, BuildCanceling)
		return err
	})
	return out, err
}

// BuildByID returns the build with that ID.
func (s *Store) BuildByID(ctx context.Context, id int64) (Build, error) {
	return scanBuild(s.db.QueryRowContext(ctx, `SELECT `+buildCols+buildFrom+` WHERE b.id = ?`, id))
}

// BuildByNumber returns build number n of a workspace.
func (s *Store) BuildByNumber(ctx context.Context, workspaceID int64, n int) (Build, error) {
	return scanBuild(s.db.QueryRowContext(ctx, `SELECT `+buildCols+buildFrom+` WHERE b.workspace_id = ? AND b.number = ?`, workspaceID, n))
}

// LatestBuild returns the workspace's build with the highest number;
// ErrNotFound if it has none.
func (s *Store) LatestBuild(ctx context.Context, workspaceID int64) (Build, error) {
	return scanBuild(s.db.QueryRowContext(ctx, `SELECT `+buildCols+buildFrom+` WHERE b.workspace_id = ?
		ORDER BY b.number DESC LIMIT 1`, workspaceID))
}

// ListBuilds returns a workspace's builds, oldest first.
func (s *Store) ListBuilds(ctx context.Context, workspaceID int64) ([]Build, error) {
	return queryAll(ctx, s.db, scanBuild, `SELECT `+buildCols+buildFrom+` WHERE b.workspace_id = ? ORDER BY b.number`, workspaceID)
}

// BuildLog is one line of a build's output.
type BuildLog struct {
	ID        int64
	BuildID   int64
	CreatedAt time.Time
	Stage     string
	Level     string
	Output    string
}

// AppendBuildLogs stores lines of a build's output in order.
func (s *Store) AppendBuildLogs(ctx context.Context, buildID int64, logs []BuildLog) error {
	if len(logs) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO build_logs (build_id, created_at, stage, level, output) VALUES (?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, l := range logs {
			at := l.CreatedAt
			if at.IsZero() {
				at = time.Now()
			}
			if _, err := stmt.ExecContext(ctx, buildID, toMillis(at), l.Stage, orDefault(l.Level, "info"), l.Output); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListBuildLogs returns up to limit lines of a build with ID > afterID.
func (s *Store) ListBuildLogs(ctx context.Context, buildID, afterID int64, limit int) ([]BuildLog, error) {
	return queryAll(ctx, s.db, scanBuildLog, `SELECT id, build_id, created_at, stage, level, output FROM build_logs
		WHERE build_id = ? AND id > ? ORDER BY id LIMIT ?`, buildID, afterID, limit)
}

func scanBuildLog(row rowScanner) (BuildLog, error) {
	var l BuildLog
	var c int64
	err := row.Scan(&l.ID, &l.BuildID, &c, &l.Stage, &l.Level, &l.Output)
	l.CreatedAt = fromMillis(c)
	return l, err
}
