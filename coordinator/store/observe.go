package store

import (
	"context"
	"database/sql"
	"sync/atomic"
	"time"
)

// Operation names given to the query observer.
const (
	OpExec  = "exec"
	OpQuery = "query"
	OpTx    = "tx"
)

// QueryObserver is told how long each database operation took: OpExec
// (one statement), OpQuery (until the first row is ready) or OpTx (a
// transaction run by the store, from begin to commit or rollback).
type QueryObserver func(op string, d time.Duration)

// timedDB is the store's *sql.DB with statements timed for the query
// observer. It embeds the *sql.DB, so every query function keeps calling
// s.db.ExecContext and friends unchanged.
type timedDB struct {
	*sql.DB
	observe atomic.Pointer[QueryObserver]
}

// SetQueryObserver sets the function told the latency of each database
// operation (nil: none). It must be cheap: it runs on every query.
func (s *Store) SetQueryObserver(f QueryObserver) {
	if f == nil {
		s.db.observe.Store(nil)
		return
	}
	s.db.observe.Store(&f)
}

// since reports the time since start to the observer, if any.
func (db *timedDB) since(op string, start time.Time) {
	if f := db.observe.Load(); f != nil {
		(*f)(op, time.Since(start))
	}
}

func (db *timedDB) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	defer db.since(OpExec, time.Now())
	return db.DB.ExecContext(ctx, q, args...)
}

func (db *timedDB) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	defer db.since(OpQuery, time.Now())
	return db.DB.QueryContext(ctx, q, args...)
}

func (db *timedDB) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	defer db.since(OpQuery, time.Now())
	return db.DB.QueryRowContext(ctx, q, args...)
}

// CountBuildsByStatus returns how many builds have each status (for
// metrics; statuses without builds are absent).
func (s *Store) CountBuildsByStatus(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT status, COUNT(*) FROM builds GROUP BY status`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var status string
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			return nil, err
		}
		out[status] = n
	}
	return out, rows.Err()
}

// BuildStatuses lists every build status.
var BuildStatuses = []string{BuildPending, BuildRunning, BuildSucceeded, BuildFailed, BuildCanceling, BuildCanceled}
