package main

import (
	"regexp"
	"testing"
	"time"
)

func TestProgressQuietWhenFast(t *testing.T) {
	var out e2eBuffer
	p := newProgressAfter(&out, false, time.Hour)
	p.step("Looking up dev")
	p.step("Joining the tailnet")
	p.done("Connected")
	p.step("late")
	if out.String() != "" {
		t.Fatalf("a fast command printed %q", out.String())
	}
}

func TestProgressWhenSlow(t *testing.T) {
	var out e2eBuffer
	p := newProgressAfter(&out, false, 50*time.Millisecond)
	p.step("Looking up dev")
	time.Sleep(200 * time.Millisecond) // slow: the current step shows
	p.step("Joining the tailnet")      // and every later one at once
	p.always("Waiting for agent main of dev to connect")
	time.Sleep(100 * time.Millisecond)
	p.done("Connected")
	p.step("after done")
	want := "Looking up dev...\nJoining the tailnet...\nWaiting for agent main of dev to connect...\n"
	if got := out.String(); got != want {
		t.Fatalf("printed %q, want %q", got, want)
	}
}

func TestProgressVerbose(t *testing.T) {
	var out e2eBuffer
	p := newProgressAfter(&out, true, time.Hour)
	p.step("Looking up dev")
	p.done("Connected")
	if !regexp.MustCompile(`^\[ *\d+\.\d\ds\] Looking up dev\.\.\.\n\[ *\d+\.\d\ds\] Connected\n$`).MatchString(out.String()) {
		t.Fatalf("verbose output %q", out.String())
	}
}
