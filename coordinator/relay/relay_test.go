package relay

import (
	"context"
	"net"
	"runtime"
	"testing"
	"time"

	"tailscale.com/types/key"
)

// TestNewBindsNothing: New only builds; Start binds STUN and Close frees
// it and stops every goroutine Start began.
func TestNewBindsNothing(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()

	before := runtime.NumGoroutine()
	r, err := New(Options{PrivateKey: key.NewNode(), Admit: func(key.NodePublic) bool { return true }, STUNAddr: addr})
	if err != nil {
		t.Fatal(err)
	}
	if n := runtime.NumGoroutine(); n != before {
		t.Errorf("New started %d goroutines", n-before)
	}
	if r.STUNPort() != -1 {
		t.Errorf("STUNPort before Start = %d, want -1", r.STUNPort())
	}
	pc, err = net.ListenPacket("udp4", addr)
	if err != nil {
		t.Fatalf("New bound the STUN port: %v", err)
	}
	pc.Close()

	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.STUNPort() <= 0 {
		t.Fatalf("STUNPort after Start = %d", r.STUNPort())
	}
	if pc, err := net.ListenPacket("udp4", addr); err == nil {
		pc.Close()
		t.Fatal("STUN port free after Start")
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := r.Start(context.Background()); err == nil {
		t.Fatal("Start after Close succeeded")
	}
	pc, err = net.ListenPacket("udp4", addr)
	if err != nil {
		t.Fatalf("STUN port still bound after Close: %v", err)
	}
	pc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left after Close", runtime.NumGoroutine()-before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStartFailureLeavesNothing: a STUN port that is taken fails Start
// and leaves the admission endpoint closed.
func TestStartFailureLeavesNothing(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	before := runtime.NumGoroutine()
	r, err := New(Options{PrivateKey: key.NewNode(), Admit: func(key.NodePublic) bool { return true }, STUNAddr: pc.LocalAddr().String()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err == nil {
		t.Fatal("Start succeeded on a taken STUN port")
	}
	r.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left after a failed Start", runtime.NumGoroutine()-before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
