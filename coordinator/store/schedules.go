package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// What queued a build when no user did (Build.InitiatedBy).
const (
	InitiatedByAutostart = "autostart"
	InitiatedByAutostop  = "autostop"
)

// Schedule is a workspace's autostart and autostop settings with the
// scheduler's persisted markers (see migration 0006).
type Schedule struct {
	WorkspaceID int64
	// Autostart is a cron spec, "" for none; TTL stops the workspace this
	// long after it started or was last in use, 0 for never.
	Autostart string
	TTL       time.Duration
	// LastActivityAt is when the agent last reported a connection.
	LastActivityAt time.Time
	// AutostartAfter is the time after which the next autostart slot is
	// looked for; AutostopBuildID the start build last stopped by the TTL.
	AutostartAfter  time.Time
	AutostopBuildID int64
	// TemplateMaxTTL is the workspace template's maximum TTL (0: none).
	TemplateMaxTTL time.Duration
}

const scheduleCols = `w.id, w.autostart, w.ttl_ms, w.last_activity_at, w.autostart_after, w.autostop_build_id,
	COALESCE(t.max_ttl_ms, 0)`

const scheduleFrom = ` FROM workspaces w LEFT JOIN templates t ON t.id = w.template_id`

func scanSchedule(row rowScanner) (Schedule, error) {
	var sc Schedule
	var ttl, act, after, maxTTL int64
	err := row.Scan(&sc.WorkspaceID, &sc.Autostart, &ttl, &act, &after, &sc.AutostopBuildID, &maxTTL)
	if errors.Is(err, sql.ErrNoRows) {
		return Schedule{}, ErrNotFound
	}
	sc.TTL, sc.TemplateMaxTTL = time.Duration(ttl)*time.Millisecond, time.Duration(maxTTL)*time.Millisecond
	sc.LastActivityAt, sc.AutostartAfter = fromMillis(act), fromMillis(after)
	return sc, err
}

// WorkspaceSchedule returns the workspace's schedule.
func (s *Store) WorkspaceSchedule(ctx context.Context, workspaceID int64) (Schedule, error) {
	return scanSchedule(s.db.QueryRowContext(ctx, `SELECT `+scheduleCols+scheduleFrom+` WHERE w.id = ?`, workspaceID))
}

// ListSchedules returns the schedules of the workspaces that have an
// autostart or a TTL, or whose template has a maximum TTL, ordered by
// workspace ID.
func (s *Store) ListSchedules(ctx context.Context) ([]Schedule, error) {
	return queryAll(ctx, s.db, scanSchedule, `SELECT `+scheduleCols+scheduleFrom+`
		WHERE w.autostart <> '' OR w.ttl_ms > 0 OR t.max_ttl_ms > 0 ORDER BY w.id`)
}

// SetWorkspaceSchedule sets the workspace's autostart spec and TTL. When
// the spec changes, the next slot is looked for after now: a new schedule
// never starts the workspace for a slot that passed before it was set.
func (s *Store) SetWorkspaceSchedule(ctx context.Context, workspaceID int64, autostart string, ttl time.Duration, now time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE workspaces SET
		autostart_after = CASE WHEN autostart <> ? THEN ? ELSE autostart_after END,
		autostart = ?, ttl_ms = ? WHERE id = ?`,
		autostart, toMillis(now), autostart, ttl.Milliseconds(), workspaceID)
	return affectedOne(res, err)
}

// RecordWorkspaceActivity moves the workspace's last activity to at,
// unless it is later already.
func (s *Store) RecordWorkspaceActivity(ctx context.Context, workspaceID int64, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE workspaces SET last_activity_at = CASE
		WHEN last_activity_at < ? THEN ? ELSE last_activity_at END WHERE id = ?`, toMillis(at), toMillis(at), workspaceID)
	return affectedOne(res, err)
}

// ClaimAutostart moves the workspace's autostart marker from old to next
// and, if b is not nil, queues b (see EnqueueBuild), in one transaction:
// of concurrent claims of one marker, one wins and the others fail with
// ErrConflict; if the build cannot be queued, the marker stays. It
// returns the queued build (zero if b is nil).
func (s *Store) ClaimAutostart(ctx context.Context, workspaceID int64, old, next time.Time, b *Build) (Build, error) {
	return s.claim(ctx, b, `UPDATE workspaces SET autostart_after = ? WHERE id = ? AND autostart_after = ?`,
		toMillis(next), workspaceID, toMillis(old))
}

// ClaimAutostop records that start build startBuildID is being stopped by
// the TTL and queues b (the stop) in one transaction; ErrConflict if that
// start was claimed already.
func (s *Store) ClaimAutostop(ctx context.Context, workspaceID, startBuildID int64, b Build) (Build, error) {
	return s.claim(ctx, &b, `UPDATE workspaces SET autostop_build_id = ? WHERE id = ? AND autostop_build_id <> ?`,
		startBuildID, workspaceID, startBuildID)
}

// claim runs the compare-and-swap cas (it must change one row, else
// ErrConflict) and queues b, if any, in one transaction.
func (s *Store) claim(ctx context.Context, b *Build, cas string, args ...any) (Build, error) {
	var id int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, cas, args...)
		if err := affectedOne(res, err); errors.Is(err, ErrNotFound) {
			return fmt.Errorf("the schedule was acted on already: %w", ErrConflict)
		} else if err != nil {
			return err
		}
		if b == nil {
			return nil
		}
		id, err = enqueueBuildTx(ctx, tx, *b)
		return err
	})
	if isUniqueViolation(err) {
		return Build{}, &BuildInProgressError{}
	}
	if err != nil || id == 0 {
		return Build{}, err
	}
	return s.BuildByID(ctx, id)
}

// TemplateSchedule returns a template's default and maximum TTL (0: none).
func (s *Store) TemplateSchedule(ctx context.Context, templateID int64) (defaultTTL, maxTTL time.Duration, err error) {
	var d, m int64
	err = s.db.QueryRowContext(ctx, `SELECT default_ttl_ms, max_ttl_ms FROM templates WHERE id = ?`, templateID).Scan(&d, &m)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, ErrNotFound
	}
	return time.Duration(d) * time.Millisecond, time.Duration(m) * time.Millisecond, err
}

// SetTemplateSchedule sets a template's default and maximum TTL.
func (s *Store) SetTemplateSchedule(ctx context.Context, templateID int64, defaultTTL, maxTTL time.Duration) error {
	res, err := s.db.ExecContext(ctx, `UPDATE templates SET default_ttl_ms = ?, max_ttl_ms = ? WHERE id = ?`,
		defaultTTL.Milliseconds(), maxTTL.Milliseconds(), templateID)
	return affectedOne(res, err)
}
