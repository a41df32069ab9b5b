package builds

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/devmesh/devmesh/coordinator/store"
	"github.com/devmesh/devmesh/provision"
)

// stageFinish marks devmesh's own lines after terraform has run.
const stageFinish = "finish"

// maxLogLines bounds one build's log; later lines are dropped.
const maxLogLines = 50000

// buildLog batches a build's log lines into the store: lines are written
// every LogFlushInterval (and at flush), so that followers see them as
// terraform prints them without a write per line.
type buildLog struct {
	q       *Queue
	buildID int64
	done    chan struct{} // closed by close: stops the flusher
	stopped chan struct{} // closed when the flusher has returned

	mu      sync.Mutex // guards pending, count
	pending []store.BuildLog
	count   int // lines accepted so far

	writeMu sync.Mutex // serializes writes, so lines are stored in order
}

func (q *Queue) newBuildLog(buildID int64) *buildLog {
	l := &buildLog{q: q, buildID: buildID, done: make(chan struct{}), stopped: make(chan struct{})}
	go l.flusher()
	return l
}

func (l *buildLog) flusher() {
	defer close(l.stopped)
	tick := time.NewTicker(l.q.opts.LogFlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-l.done:
			return
		case <-tick.C:
			l.flush()
		}
	}
}

// add takes a line of terraform's output (provision.BuildRequest.Log).
func (l *buildLog) add(line provision.LogLine) {
	l.append(store.BuildLog{CreatedAt: line.Time, Stage: string(line.Stage), Level: line.Level, Output: line.Message})
}

// printf adds a line of devmesh's own.
func (l *buildLog) printf(stage provision.Stage, level, format string, args ...any) {
	l.append(store.BuildLog{CreatedAt: time.Now(), Stage: string(stage), Level: level, Output: fmt.Sprintf(format, args...)})
}

func (l *buildLog) append(line store.BuildLog) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.count++
	switch {
	case l.count < maxLogLines:
		l.pending = append(l.pending, line)
	case l.count == maxLogLines:
		l.pending = append(l.pending, store.BuildLog{CreatedAt: time.Now(), Stage: line.Stage, Level: provision.LevelWarn,
			Output: fmt.Sprintf("devmesh: the build log is cut at %d lines; later lines are dropped", maxLogLines)})
	}
}

// flush writes the pending lines now. A failed write is logged and the
// lines dropped: the build goes on without them.
func (l *buildLog) flush() {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	l.mu.Lock()
	lines := l.pending
	l.pending = nil
	l.mu.Unlock()
	if len(lines) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(l.q.ctx), storeTimeout)
	defer cancel()
	if err := l.q.st.AppendBuildLogs(ctx, l.buildID, lines); err != nil {
		l.q.log.Error("store build log lines", "build_id", l.buildID, "lines", len(lines), "err", err)
		return
	}
	l.q.watch.notify(l.buildID)
}

// close stops the flusher and writes what is left.
func (l *buildLog) close() {
	close(l.done)
	<-l.stopped
	l.flush()
}
