package api

import (
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// LoginLimits rate-limits password checks with token buckets. Zero fields
// take the defaults.
type LoginLimits struct {
	// IPBurst attempts (successful or not) per client IP, refilled one per
	// IPInterval. Default 20 and 3s (20 a minute): this bounds the
	// password-hashing work one address can cause.
	IPBurst    int
	IPInterval time.Duration
	// UserBurst failed attempts per username, refilled one per
	// UserInterval. Default 5 and 10s. Successful attempts are refunded.
	UserBurst    int
	UserInterval time.Duration
}

func (l LoginLimits) withDefaults() LoginLimits {
	if l.IPBurst <= 0 {
		l.IPBurst = 20
	}
	if l.IPInterval <= 0 {
		l.IPInterval = 3 * time.Second
	}
	if l.UserBurst <= 0 {
		l.UserBurst = 5
	}
	if l.UserInterval <= 0 {
		l.UserInterval = 10 * time.Second
	}
	return l
}

// loginLimiter holds one bucket per client IP and per username.
type loginLimiter struct {
	byIP   *bucketSet
	byUser *bucketSet
}

func newLoginLimiter(l LoginLimits) *loginLimiter {
	l = l.withDefaults()
	return &loginLimiter{
		byIP:   newBucketSet(l.IPInterval, l.IPBurst),
		byUser: newBucketSet(l.UserInterval, l.UserBurst),
	}
}

// attempt is an admitted password check; call succeeded if the password
// was right, so that it does not count against the username.
type attempt struct {
	l        *loginLimiter
	username string
}

func (a attempt) succeeded() { a.l.byUser.refund(a.username, time.Now()) }

// begin admits one password attempt from ip for username, or returns how
// long to wait. The IP bucket is charged for every admitted attempt, the
// username's until succeeded is called.
func (l *loginLimiter) begin(ip, username string) (attempt, time.Duration, bool) {
	now := time.Now()
	if wait, ok := l.byIP.take(ip, now); !ok {
		return attempt{}, wait, false
	}
	if wait, ok := l.byUser.take(username, now); !ok {
		l.byIP.refund(ip, now) // nothing was hashed; do not charge the address
		return attempt{}, wait, false
	}
	return attempt{l: l, username: username}, 0, true
}

// chargeIP charges ip for password-hashing work outside login (the first
// user bootstrap), or returns how long to wait.
func (l *loginLimiter) chargeIP(ip string) (time.Duration, bool) {
	return l.byIP.take(ip, time.Now())
}

// bucketSet is a set of token buckets by key: each holds up to burst
// tokens and gains one per interval. Full buckets carry no state, so a
// periodic sweep drops them: memory is bounded by the keys active within
// one refill period.
type bucketSet struct {
	interval time.Duration
	burst    float64

	mu        sync.Mutex // guards m and lastSweep
	m         map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	last   time.Time // when tokens was computed
}

const sweepEvery = time.Minute

func newBucketSet(interval time.Duration, burst int) *bucketSet {
	return &bucketSet{interval: interval, burst: float64(burst), m: map[string]*bucket{}, lastSweep: time.Now()}
}

// take removes a token from key's bucket, or reports how long until one
// is available.
func (b *bucketSet) take(key string, now time.Time) (time.Duration, bool) {
	key = clampKey(key)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sweepLocked(now)
	bk := b.m[key]
	if bk == nil {
		bk = &bucket{tokens: b.burst, last: now}
		b.m[key] = bk
	}
	b.refillLocked(bk, now)
	if bk.tokens < 1 {
		return time.Duration((1 - bk.tokens) * float64(b.interval)), false
	}
	bk.tokens--
	return 0, true
}

// refund gives back a token taken from key's bucket.
func (b *bucketSet) refund(key string, now time.Time) {
	key = clampKey(key)
	b.mu.Lock()
	defer b.mu.Unlock()
	if bk := b.m[key]; bk != nil {
		b.refillLocked(bk, now)
		bk.tokens = min(b.burst, bk.tokens+1)
	}
}

// clampKey bounds the memory one key can hold (usernames are at most 32
// bytes; anything longer is not a user anyway).
func clampKey(k string) string {
	if len(k) > 64 {
		return k[:64]
	}
	return k
}

func (b *bucketSet) refillLocked(bk *bucket, now time.Time) {
	if elapsed := now.Sub(bk.last); elapsed > 0 {
		bk.tokens = min(b.burst, bk.tokens+float64(elapsed)/float64(b.interval))
		bk.last = now
	}
}

func (b *bucketSet) sweepLocked(now time.Time) {
	if now.Sub(b.lastSweep) < sweepEvery {
		return
	}
	for k, bk := range b.m {
		if b.refillLocked(bk, now); bk.tokens >= b.burst {
			delete(b.m, k)
		}
	}
	b.lastSweep = now
}

// clientIP is the rate-limit key for the request's peer: its IPv4
// address, or its IPv6 /64 (one host usually holds a whole /64). The API
// trusts no forwarding headers: behind a reverse proxy, all clients share
// the proxy's bucket.
func clientIP(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	addr := ap.Addr().Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}
