package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/devmesh/devmesh/coordinator/client"
)

// ErrTokenRejected ends Run when the coordinator no longer accepts the
// agent token: the workspace or the agent was deleted.
var ErrTokenRejected = errors.New("the coordinator rejected the agent token")

// Backoff between attempts of an API call.
const (
	minBackoff = 250 * time.Millisecond
	maxBackoff = 30 * time.Second
	// warnEvery bounds how often a still-failing call is logged at Warn.
	warnEvery = time.Minute
)

// retry calls fn until it succeeds, ctx ends, or the error is permanent:
// the token was rejected (which also stops the agent) or the request
// was refused (a 4xx other than 408 and 429). Network errors and 5xx are
// retried with exponential backoff and jitter.
func retry(ctx context.Context, a *Agent, what string, fn func(context.Context) error) error {
	backoff := minBackoff
	var failingSince, lastWarn time.Time
	for {
		err := fn(ctx)
		if err == nil {
			if !failingSince.IsZero() {
				a.log.Info("reached the coordinator again", "call", what, "after", time.Since(failingSince).Round(time.Second))
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if a.checkRejected(err) {
			return ErrTokenRejected
		}
		if permanent(err) {
			return fmt.Errorf("%s: %w", what, err)
		}
		now := time.Now()
		if failingSince.IsZero() {
			failingSince = now
		}
		if now.Sub(lastWarn) >= warnEvery {
			a.log.Warn("coordinator call failed; retrying", "call", what, "err", err)
			lastWarn = now
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		if ra := retryAfter(err); ra > wait {
			wait = ra
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// retryValue is retry for a call that returns a value.
func retryValue[T any](ctx context.Context, a *Agent, what string, fn func(context.Context) (T, error)) (T, error) {
	var out T
	err := retry(ctx, a, what, func(ctx context.Context) error {
		var err error
		out, err = fn(ctx)
		return err
	})
	return out, err
}

// checkRejected reports whether err says the agent token is not accepted
// (401), and if so stops the agent.
func (a *Agent) checkRejected(err error) bool {
	var e *client.Error
	if !errors.As(err, &e) || e.Status != http.StatusUnauthorized || e.Code != client.CodeUnauthorized {
		return false // not ours: a proxy in between says nothing about the token
	}
	a.log.Error("the coordinator rejected the agent token; stopping", "err", err)
	a.stop(fmt.Errorf("%w: %s", ErrTokenRejected, e.Message))
	return true
}

// permanent reports whether retrying err cannot help.
func permanent(err error) bool {
	var e *client.Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests
}

func retryAfter(err error) time.Duration {
	var e *client.Error
	if errors.As(err, &e) {
		return min(e.RetryAfter, maxBackoff)
	}
	return 0
}
