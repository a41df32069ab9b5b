package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/devmesh/devmesh/coordinator/client"
	"github.com/devmesh/devmesh/internal/ownerperm"
)

// ErrTokenRejected ends Run when the coordinator no longer accepts the
// agent token (the workspace was stopped or deleted, or the agent
// removed), or never accepted it within Options.TokenRejectedGrace.
var ErrTokenRejected = errors.New("the coordinator rejected the agent token")

// Backoff between attempts of an API call.
const (
	minBackoff = 250 * time.Millisecond
	maxBackoff = 30 * time.Second
	// warnEvery bounds how often a still-failing call is logged at Warn.
	warnEvery = time.Minute
)

// Backoff while a token the coordinator has never accepted is rejected:
// short, because the build that registers it may finish any moment.
const maxRejectedBackoff = 500 * time.Millisecond

// retry calls fn until it succeeds, ctx ends, or the error is permanent:
// the token was rejected (which also stops the agent; see checkRejected)
// or the request was refused (a 4xx other than 408 and 429). Network
// errors and 5xx are retried with exponential backoff and jitter, and so
// is a rejected token during the grace period.
func retry(ctx context.Context, a *Agent, what string, fn func(context.Context) error) error {
	backoff := minBackoff
	var failingSince, lastWarn, waitingSince time.Time
	for {
		err := fn(ctx)
		if err == nil {
			a.tokenAccepted(waitingSince)
			if !failingSince.IsZero() {
				a.log.Info("reached the coordinator again", "call", what, "after", time.Since(failingSince).Round(time.Second))
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		limit := maxBackoff
		switch {
		case a.checkRejected(err):
			return ErrTokenRejected
		case isRejection(err):
			// Not accepted yet, within the grace period.
			limit = maxRejectedBackoff
			now := time.Now()
			if waitingSince.IsZero() {
				waitingSince = now
			}
			if now.Sub(lastWarn) >= warnEvery {
				a.log.Warn("agent token not accepted (yet): waiting for the build to finish or the workspace was deleted",
					"call", what, "gives_up_in", a.graceLeft().Round(time.Second))
				lastWarn = now
			}
		case permanent(err):
			return fmt.Errorf("%s: %w", what, err)
		default:
			now := time.Now()
			if failingSince.IsZero() {
				failingSince = now
			}
			if now.Sub(lastWarn) >= warnEvery {
				a.log.Warn("coordinator call failed; retrying", "call", what, "err", err)
				lastWarn = now
			}
		}
		backoff = min(backoff, limit)
		wait := backoff/2 + rand.N(backoff/2+1)
		if ra := retryAfter(err); ra > wait {
			wait = ra
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		backoff = min(2*backoff, limit)
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

// tokenAccepted records that a call with the token succeeded; from now
// on a rejection stops the agent at once, and so it does after a restart
// (see acceptedFile). waitingSince is when the call was first rejected
// (zero if it was not).
func (a *Agent) tokenAccepted(waitingSince time.Time) {
	if a.accepted.Swap(true) {
		return
	}
	if err := a.recordAccepted(); err != nil {
		a.log.Warn("record that the token was accepted", "err", err)
	}
	if !waitingSince.IsZero() {
		a.log.Info("agent token accepted", "waited", time.Since(waitingSince).Round(100*time.Millisecond))
	}
}

// acceptedFile, in the state directory, holds the SHA-256 of a token the
// coordinator has accepted. An agent restarted with that token after its
// workspace was stopped or deleted then stops at the first rejection
// instead of waiting out the grace period meant for a token whose build
// has not finished yet.
const acceptedFile = "token-accepted"

func (a *Agent) tokenHash() string {
	h := sha256.Sum256([]byte(a.opts.Token))
	return hex.EncodeToString(h[:])
}

func (a *Agent) recordAccepted() error {
	if err := ownerperm.Dir(a.opts.StateDir); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(a.opts.StateDir, acceptedFile), []byte(a.tokenHash()+"\n"), 0o600)
}

// acceptedBefore reports whether the coordinator accepted this token in
// an earlier run with this state directory.
func (a *Agent) acceptedBefore() bool {
	b, err := os.ReadFile(filepath.Join(a.opts.StateDir, acceptedFile))
	return err == nil && strings.TrimSpace(string(b)) == a.tokenHash()
}

// graceLeft is how much of the grace period for a token not accepted yet
// remains (0 or less: none).
func (a *Agent) graceLeft() time.Duration {
	if a.opts.TokenRejectedGrace < 0 {
		return 0
	}
	return a.opts.TokenRejectedGrace - time.Since(a.started)
}

// isRejection reports whether err says the coordinator does not accept
// the agent token (a 401 with our code; a proxy's 401 says nothing about
// the token).
func isRejection(err error) bool {
	var e *client.Error
	return errors.As(err, &e) && e.Status == http.StatusUnauthorized && e.Code == client.CodeUnauthorized
}

// checkRejected reports whether err says the agent token is not accepted
// and the agent must stop, and if so stops it: the token was accepted
// before (the workspace was stopped or deleted since), or it has not been
// accepted within the grace period.
func (a *Agent) checkRejected(err error) bool {
	if !isRejection(err) {
		return false
	}
	var e *client.Error
	errors.As(err, &e)
	if a.accepted.Load() {
		a.log.Error("the coordinator rejected the agent token (the workspace was stopped or deleted); stopping", "err", err)
		a.stop(fmt.Errorf("%w: %s", ErrTokenRejected, e.Message))
		return true
	}
	if a.graceLeft() > 0 {
		return false
	}
	if a.opts.TokenRejectedGrace < 0 {
		a.log.Error("the coordinator rejected the agent token; stopping", "err", err)
		a.stop(fmt.Errorf("%w: %s", ErrTokenRejected, e.Message))
		return true
	}
	waited := time.Since(a.started).Round(time.Second)
	a.log.Error("the coordinator did not accept the agent token within the grace period; stopping", "err", err, "waited", waited)
	a.stop(fmt.Errorf("%w (not accepted in %v): %s", ErrTokenRejected, waited, e.Message))
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
