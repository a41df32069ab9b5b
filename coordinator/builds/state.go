package builds

import (
	"errors"
	"fmt"

	"github.com/devmesh/devmesh/coordinator/store"
)

// Event is something that happens to a build.
type Event int

const (
	EventClaim     Event = iota // a worker takes the pending build
	EventCancel                 // someone cancels it
	EventSucceed                // terraform finished without error
	EventFail                   // terraform or devmesh failed (or stopped after a cancel)
	EventInterrupt              // the coordinator stopped while it ran
)

func (e Event) String() string {
	switch e {
	case EventClaim:
		return "claim"
	case EventCancel:
		return "cancel"
	case EventSucceed:
		return "succeed"
	case EventFail:
		return "fail"
	case EventInterrupt:
		return "interrupt"
	}
	return fmt.Sprintf("Event(%d)", int(e))
}

// Errors from Next.
var (
	ErrFinished      = errors.New("the build has already finished")
	ErrBadTransition = errors.New("invalid build status transition")
)

// transitions is the build state machine: status -> event -> new status.
// A build is claimed only while pending; canceling it while pending ends
// it at once, while running asks terraform to stop. A build that was being
// canceled and fails counts as canceled (terraform failed because it was
// interrupted); if it succeeds anyway, it succeeded. A build that was
// running when the coordinator died failed.
var transitions = map[string]map[Event]string{
	store.BuildPending: {
		EventClaim:  store.BuildRunning,
		EventCancel: store.BuildCanceled,
	},
	store.BuildRunning: {
		EventCancel:    store.BuildCanceling,
		EventSucceed:   store.BuildSucceeded,
		EventFail:      store.BuildFailed,
		EventInterrupt: store.BuildFailed,
	},
	store.BuildCanceling: {
		EventCancel:    store.BuildCanceling,
		EventSucceed:   store.BuildSucceeded,
		EventFail:      store.BuildCanceled,
		EventInterrupt: store.BuildFailed,
	},
}

// Next returns the status a build in status from moves to on e. It fails
// with ErrFinished for a finished build and ErrBadTransition for an event
// that cannot happen in from. It is pure.
func Next(from string, e Event) (string, error) {
	switch from {
	case store.BuildSucceeded, store.BuildFailed, store.BuildCanceled:
		return "", fmt.Errorf("%w (%s)", ErrFinished, from)
	}
	to, ok := transitions[from][e]
	if !ok {
		return "", fmt.Errorf("%w: %s on a %q build", ErrBadTransition, e, from)
	}
	return to, nil
}
