package main

import "testing"

// TestSTUNFollowsListenHost: without --stun-listen, STUN binds the
// --listen host (it bound every interface even for a loopback server).
func TestSTUNFollowsListenHost(t *testing.T) {
	for listen, want := range map[string]string{
		"127.0.0.1:8080":  "127.0.0.1:3478",
		"[::1]:8080":      "[::1]:3478",
		"localhost:0":     "localhost:3478",
		"10.1.2.3:443":    "10.1.2.3:3478",
		"0.0.0.0:8080":    "0.0.0.0:3478",
		":8080":           ":3478",
		"not-an-address!": ":3478",
	} {
		if got := defaultSTUNListen(listen); got != want {
			t.Errorf("defaultSTUNListen(%q) = %q, want %q", listen, got, want)
		}
	}
}
