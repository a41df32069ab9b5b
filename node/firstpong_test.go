package node

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestFirstPongOverlaps checks that a lost disco ping does not hold up
// the next one: the first ping is never answered (sent before the peer
// knew this node), the second is. firstPong must return on the second
// and cancel the first, not wait for the first to time out. Regression:
// WaitReachable pinged one at a time with a 250 ms timeout, so a cold
// `devmesh ssh` often lost 300 ms there.
func TestFirstPongOverlaps(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var calls atomic.Int32
	firstEnded := make(chan error, 1)
	err := firstPong(ctx, []time.Duration{0, 10, 20}, func(ctx context.Context) error {
		if calls.Add(1) == 1 {
			<-ctx.Done() // lost: no pong ever comes
			firstEnded <- ctx.Err()
			return ctx.Err()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("firstPong = %v, want nil (the second ping was answered)", err)
	}
	select {
	case err := <-firstEnded:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the lost ping ended with %v, want it canceled once another was answered", err)
		}
	default:
		t.Fatal("firstPong returned while a ping was still running")
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d pings sent, want 2 (none after the answer)", n)
	}
}

// TestFirstPongAllFail checks that firstPong gives up with the last error
// once every scheduled ping has failed, without waiting for ctx.
func TestFirstPongAllFail(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	refused := errors.New("no such peer")
	var calls atomic.Int32
	err := firstPong(ctx, []time.Duration{0, 1, 2}, func(context.Context) error {
		calls.Add(1)
		return refused
	})
	if !errors.Is(err, refused) {
		t.Fatalf("firstPong = %v, want %v", err, refused)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d pings sent, want 3", n)
	}
	if ctx.Err() != nil {
		t.Fatal("firstPong waited for its context to end")
	}
}
