package api

import (
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// LoginLimits rate-limits password checks with token buckets. Zero fields
// take the defaults.
//
// Failures are counted per (username, client address): an address that
// guessed wrong PairBurst times is refused (429) for that user only, so
// no one can lock a user out from elsewhere. Across all addresses, a
// username's failures beyond UserBurst do not refuse anything: they make
// every later attempt for that user wait a little, growing from UserDelay
// and capped at UserMaxDelay, so the right password from a fresh address
// always gets through after at most UserMaxDelay.
type LoginLimits struct {
	// IPBurst attempts (successful or not) per client IP, refilled one per
	// IPInterval. Default 20 and 3s (20 a minute): this bounds the
	// password-hashing work one address can cause.
	IPBurst    int
	IPInterval time.Duration
	// PairBurst failed attempts per username and client IP, refilled one
	// per PairInterval. Default 5 and 10s. Successful attempts are
	// refunded.
	PairBurst    int
	PairInterval time.Duration
	// UserBurst failed attempts per username from all addresses before
	// the backoff starts, refilled one per UserInterval. Default 20 and
	// 10s.
	UserBurst    int
	UserInterval time.Duration
	// UserDelay is the first backoff step (default 250ms); it doubles
	// with each failure beyond UserBurst up to UserMaxDelay (default 5s).
	UserDelay    time.Duration
	UserMaxDelay time.Duration
}

func (l LoginLimits) withDefaults() LoginLimits {
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	defD := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&l.IPBurst, 20)
	defD(&l.IPInterval, 3*time.Second)
	def(&l.PairBurst, 5)
	defD(&l.PairInterval, 10*time.Second)
	def(&l.UserBurst, 20)
	defD(&l.UserInterval, 10*time.Second)
	defD(&l.UserDelay, 250*time.Millisecond)
	defD(&l.UserMaxDelay, 5*time.Second)
	l.UserMaxDelay = max(l.UserMaxDelay, l.UserDelay)
	return l
}

// maxUserDebt bounds how far a username's failure bucket is overdrawn:
// enough for the delay to reach any sensible UserMaxDelay, and no more,
// so the backoff ends soon after an attack does.
const maxUserDebt = 32

// loginLimiter holds one bucket per client IP, per (username, IP) and per
// username.
type loginLimiter struct {
	lim    LoginLimits
	byIP   *bucketSet
	byPair *bucketSet
	byUser *bucketSet
	now    func() time.Time
}

func newLoginLimiter(l LoginLimits) *loginLimiter {
	l = l.withDefaults()
	return &loginLimiter{
		lim:    l,
		byIP:   newBucketSet(l.IPInterval, l.IPBurst),
		byPair: newBucketSet(l.PairInterval, l.PairBurst),
		byUser: newBucketSet(l.UserInterval, l.UserBurst),
		now:    time.Now,
	}
}

// attempt is an admitted password check; call succeeded if the password
// was right, so that it does not count against the username. delay is how
// long the check must wait first (the per-user backoff).
type attempt struct {
	l        *loginLimiter
	username string
	pair     string
	delay    time.Duration
}

func (a attempt) succeeded() {
	now := a.l.now()
	a.l.byPair.refund(a.pair, now)
	a.l.byUser.refund(a.username, now)
}

func pairKey(ip, username string) string { return ip + "|" + username }

// begin admits one password attempt from ip for username, or returns how
// long to wait. The IP bucket is charged for every admitted attempt, the
// pair's and the username's until succeeded is called.
func (l *loginLimiter) begin(ip, username string) (attempt, time.Duration, bool) {
	now := l.now()
	if wait, ok := l.byIP.take(ip, now); !ok {
		return attempt{}, wait, false
	}
	pair := pairKey(ip, username)
	if wait, ok := l.byPair.take(pair, now); !ok {
		l.byIP.refund(ip, now) // nothing was hashed; do not charge the address
		return attempt{}, wait, false
	}
	lacking := l.byUser.overdraw(username, now, maxUserDebt)
	return attempt{l: l, username: username, pair: pair, delay: l.backoff(lacking)}, 0, true
}

// backoff is the delay for an attempt made when the username's bucket
// lacked that many tokens: 0 within the budget, then UserDelay doubling
// per missing token, at most UserMaxDelay.
func (l *loginLimiter) backoff(lacking float64) time.Duration {
	if lacking <= 0 {
		return 0
	}
	d := l.lim.UserDelay
	for i := 1; float64(i) < lacking && d < l.lim.UserMaxDelay; i++ {
		d *= 2
	}
	return min(d, l.lim.UserMaxDelay)
}

// chargeIP charges ip for password-hashing work outside login (the first
// user bootstrap), or returns how long to wait.
func (l *loginLimiter) chargeIP(ip string) (time.Duration, bool) {
	return l.byIP.take(ip, l.now())
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
	bk := b.bucketLocked(key, now)
	if bk.tokens < 1 {
		return time.Duration((1 - bk.tokens) * float64(b.interval)), false
	}
	bk.tokens--
	return 0, true
}

// bucketLocked returns key's bucket refilled up to now (a new one is
// full), after sweeping idle buckets. b.mu is held.
func (b *bucketSet) bucketLocked(key string, now time.Time) *bucket {
	b.sweepLocked(now)
	bk := b.m[key]
	if bk == nil {
		bk = &bucket{tokens: b.burst, last: now}
		b.m[key] = bk
	}
	b.refillLocked(bk, now)
	return bk
}

// overdraw takes a token from key's bucket even when it has none, down
// to -limit tokens, and returns how many it lacked before the take (0
// when it had one).
func (b *bucketSet) overdraw(key string, now time.Time, limit float64) float64 {
	key = clampKey(key)
	b.mu.Lock()
	defer b.mu.Unlock()
	bk := b.bucketLocked(key, now)
	lacking := max(0, 1-bk.tokens)
	bk.tokens = max(-limit, bk.tokens-1)
	return lacking
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
// bytes, and a (username, address) key at most 32+1+45; anything longer
// is not a user anyway).
func clampKey(k string) string {
	if len(k) > 96 {
		return k[:96]
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
