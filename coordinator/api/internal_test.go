package api

import (
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

func TestBucketSet(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	b := newBucketSet(10*time.Second, 2)
	b.lastSweep = t0
	for i := range 2 {
		if _, ok := b.take("k", t0); !ok {
			t.Fatalf("take %d refused within burst", i)
		}
	}
	wait, ok := b.take("k", t0)
	if ok || wait != 10*time.Second {
		t.Fatalf("take beyond burst = %v, %v; want refused for 10s", wait, ok)
	}
	if wait, ok := b.take("k", t0.Add(4*time.Second)); ok || wait != 6*time.Second {
		t.Fatalf("after 4s: %v, %v; want refused for 6s", wait, ok)
	}
	if _, ok := b.take("other", t0); !ok {
		t.Fatal("keys share a bucket")
	}
	if _, ok := b.take("k", t0.Add(10*time.Second)); !ok {
		t.Fatal("no token after one interval")
	}
	b.refund("k", t0.Add(10*time.Second))
	if _, ok := b.take("k", t0.Add(10*time.Second)); !ok {
		t.Fatal("refund did not return a token")
	}
	// A sweep drops full buckets and keeps the others.
	b.take("busy", t0.Add(2*time.Minute))
	b.take("busy", t0.Add(2*time.Minute))
	if len(b.m) != 1 || b.m["busy"] == nil {
		t.Fatalf("after sweep: %d buckets, want only the busy one", len(b.m))
	}
}

func TestParseLifetime(t *testing.T) {
	const def, max = time.Hour, 90 * 24 * time.Hour
	for in, want := range map[string]time.Duration{
		"":     def,
		"30m":  30 * time.Minute,
		"720h": 720 * time.Hour,
		"7d":   7 * 24 * time.Hour,
		"90d":  max,
	} {
		if got, err := parseLifetime("expiry", in, def, max); err != nil || got != want {
			t.Errorf("parseLifetime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"91d", "0s", "-1h", "1y", "d", "1.5d", "forever", "2161h"} {
		if got, err := parseLifetime("expiry", in, def, max); err == nil {
			t.Errorf("parseLifetime(%q) = %v, want an error", in, got)
		}
	}
}

func TestValidateUsername(t *testing.T) {
	for _, ok := range []string{"a", "alice", "a-b", "x1", "abcdefghijklmnopqrstuvwxyz012345"} {
		if err := validateUsername(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "A", "1a", "-a", "a-", "a_b", "a.b", "ä", "abcdefghijklmnopqrstuvwxyz0123456"} {
		if err := validateUsername(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestClientIP(t *testing.T) {
	for remote, want := range map[string]string{
		"192.0.2.1:1234":                "192.0.2.1",
		"[::ffff:192.0.2.1]:1234":       "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:443":    "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff:4:5:6]:443": "2001:db8:1:2::/64",
		"not-an-address":                "not-an-address",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		if got := clientIP(r); got != want {
			t.Errorf("clientIP(%q) = %q, want %q", remote, got, want)
		}
	}
}

func TestLoginBackoffSteps(t *testing.T) {
	l := newLoginLimiter(LoginLimits{UserBurst: 2, UserDelay: 100 * time.Millisecond, UserMaxDelay: time.Second})
	for lacking, want := range map[float64]time.Duration{
		0: 0, 0.5: 100 * time.Millisecond, 1: 100 * time.Millisecond, 2: 200 * time.Millisecond,
		3: 400 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, maxUserDebt: time.Second,
	} {
		if got := l.backoff(lacking); got != want {
			t.Errorf("backoff(%v) = %v, want %v", lacking, got, want)
		}
	}
	// The username's bucket is overdrawn, never refusing, down to
	// -maxUserDebt; it then refills as usual.
	t0 := time.Unix(1_700_000_000, 0)
	l.now = func() time.Time { return t0 }
	var last attempt
	for i := range 50 {
		att, _, ok := l.begin("192.0.2."+strconv.Itoa(i), "bob")
		if !ok {
			t.Fatalf("attempt %d from a fresh address refused", i)
		}
		last = att
	}
	if last.delay != time.Second {
		t.Fatalf("delay after 50 failures = %v, want the cap", last.delay)
	}
	if tokens := l.byUser.m["bob"].tokens; tokens != -maxUserDebt {
		t.Fatalf("bucket at %v, want -%d", tokens, maxUserDebt)
	}
	l.now = func() time.Time { return t0.Add(time.Duration(maxUserDebt+2) * 10 * time.Second) }
	if att, _, _ := l.begin("198.51.100.1", "bob"); att.delay != 0 {
		t.Fatalf("delay after the attack ended = %v, want 0", att.delay)
	}
}
