package builds

import (
	"errors"
	"testing"

	"github.com/devmesh/devmesh/coordinator/store"
)

func TestNext(t *testing.T) {
	const (
		pending   = store.BuildPending
		running   = store.BuildRunning
		canceling = store.BuildCanceling
		succeeded = store.BuildSucceeded
		failed    = store.BuildFailed
		canceled  = store.BuildCanceled
	)
	tests := []struct {
		from string
		e    Event
		want string // "" when an error is expected
		err  error
	}{
		{pending, EventClaim, running, nil},
		{pending, EventCancel, canceled, nil},
		{pending, EventSucceed, "", ErrBadTransition},
		{pending, EventFail, "", ErrBadTransition},
		{pending, EventInterrupt, "", ErrBadTransition},

		{running, EventClaim, "", ErrBadTransition},
		{running, EventCancel, canceling, nil},
		{running, EventSucceed, succeeded, nil},
		{running, EventFail, failed, nil},
		{running, EventInterrupt, failed, nil},

		{canceling, EventClaim, "", ErrBadTransition},
		{canceling, EventCancel, canceling, nil},
		{canceling, EventSucceed, succeeded, nil},
		{canceling, EventFail, canceled, nil},
		{canceling, EventInterrupt, failed, nil},

		{succeeded, EventCancel, "", ErrFinished},
		{failed, EventClaim, "", ErrFinished},
		{canceled, EventFail, "", ErrFinished},
		{"bogus", EventClaim, "", ErrBadTransition},
		{running, Event(42), "", ErrBadTransition},
	}
	for _, tt := range tests {
		got, err := Next(tt.from, tt.e)
		if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("Next(%s, %s) = %q, %v; want %q, %v", tt.from, tt.e, got, err, tt.want, tt.err)
		}
	}
}
