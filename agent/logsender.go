package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/devmesh/devmesh/coordinator/client"
)

// Log batching: lines are sent at most logBatchDelay after they were
// written, in requests well under the API's 64 KiB body limit. At most
// maxPendingLogs wait while the coordinator is away; more are dropped
// and counted.
const (
	logBatchDelay  = 200 * time.Millisecond
	logBatchLines  = 500
	logBatchBytes  = 48 << 10
	maxPendingLogs = 10_000
)

// logSender queues log lines and sends them in order, in batches, with
// retries. add never blocks.
type logSender struct {
	a    *Agent
	wake chan struct{} // cap 1: lines were added

	mu       sync.Mutex
	pending  []client.AgentLogLine // guarded by mu; sent in order
	queued   uint64                // guarded by mu; lines ever added
	done     uint64                // guarded by mu; lines sent, or given up on
	dropped  int                   // guarded by mu; dropped since the last notice
	full     bool                  // guarded by mu; the coordinator stores no more
	progress chan struct{}         // guarded by mu; closed when done advances
}

func newLogSender(a *Agent) *logSender {
	return &logSender{a: a, wake: make(chan struct{}, 1), progress: make(chan struct{})}
}

// add queues one line.
func (s *logSender) add(stream, output string) {
	line := client.AgentLogLine{Stream: stream, Output: output, CreatedAt: time.Now()}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queued++
	switch {
	case s.full:
		s.advanceLocked(1)
		return
	case len(s.pending) >= maxPendingLogs:
		s.dropped++
		s.advanceLocked(1)
		return
	case s.dropped > 0:
		notice := fmt.Sprintf("devmesh agent: %d lines dropped while the coordinator was unreachable", s.dropped)
		s.pending = append(s.pending, client.AgentLogLine{Stream: client.StreamStderr, Output: notice, CreatedAt: line.CreatedAt})
		s.queued++
		s.dropped = 0
	}
	s.pending = append(s.pending, line)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *logSender) advanceLocked(n int) {
	s.done += uint64(n)
	close(s.progress)
	s.progress = make(chan struct{})
}

// run sends queued lines until ctx ends.
func (s *logSender) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		select { // let a burst of lines gather into one request
		case <-ctx.Done():
			return
		case <-time.After(logBatchDelay):
		}
		for {
			batch := s.next()
			if len(batch) == 0 {
				break
			}
			err := retry(ctx, s.a, "send logs", func(ctx context.Context) error {
				return s.a.api.PostAgentLogs(ctx, batch)
			})
			if ctx.Err() != nil {
				return
			}
			s.sent(len(batch), err)
		}
	}
}

// next returns the first lines that fit in one request.
func (s *logSender) next() []client.AgentLogLine {
	s.mu.Lock()
	defer s.mu.Unlock()
	size := 0
	n := 0
	for n < len(s.pending) && n < logBatchLines {
		b, _ := json.Marshal(s.pending[n])
		if n > 0 && size+len(b)+1 > logBatchBytes {
			break
		}
		size += len(b) + 1
		n++
	}
	return append([]client.AgentLogLine(nil), s.pending[:n]...)
}

// sent removes the first n lines after an attempt to send them; err is
// a permanent refusal (or nil).
func (s *logSender) sent(n int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = s.pending[n:]
	switch {
	case err == nil:
	case client.ErrorCode(err) == client.CodeLogsFull:
		s.a.log.Warn("the coordinator stores no more log lines for this agent; dropping the rest")
		s.full = true
		n += len(s.pending)
		s.pending = nil
	default:
		s.a.log.Warn("the coordinator refused log lines; dropped them", "lines", n, "err", err)
	}
	s.advanceLocked(n)
}

// flush waits until every line added before the call was sent (or given
// up on), or ctx ends.
func (s *logSender) flush(ctx context.Context) {
	s.mu.Lock()
	target := s.queued
	s.mu.Unlock()
	for {
		s.mu.Lock()
		ok, ch := s.done >= target, s.progress
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}
