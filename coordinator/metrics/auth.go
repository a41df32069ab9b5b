package metrics

import "github.com/prometheus/client_golang/prometheus"

// Login failure reasons and rate-limited operations (label values).
const (
	LoginBadCredentials = "bad_credentials"
	LoginDisabled       = "account_disabled"
	LimitLogin          = "login"
	LimitFirstUser      = "first_user"
)

// Auth records failed logins and rate-limit hits.
type Auth struct {
	failures map[string]prometheus.Counter
	limited  map[string]prometheus.Counter
}

func newAuth(reg prometheus.Registerer) *Auth {
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "auth", Name: "login_failures_total",
		Help: "Password checks that failed (API login and the node login page), by reason.",
	}, []string{"reason"})
	limited := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "auth", Name: "rate_limited_total",
		Help: "Requests refused by a rate limit, by operation.",
	}, []string{"op"})
	a := &Auth{failures: map[string]prometheus.Counter{}, limited: map[string]prometheus.Counter{}}
	for _, r := range []string{LoginBadCredentials, LoginDisabled} {
		a.failures[r] = failures.WithLabelValues(r)
	}
	for _, op := range []string{LimitLogin, LimitFirstUser} {
		a.limited[op] = limited.WithLabelValues(op)
	}
	reg.MustRegister(failures, limited)
	return a
}

// LoginFailed records a failed password check (LoginBadCredentials,
// LoginDisabled).
func (a *Auth) LoginFailed(reason string) {
	if a == nil {
		return
	}
	if c := a.failures[reason]; c != nil {
		c.Inc()
	}
}

// RateLimited records a request refused by a rate limit (LimitLogin,
// LimitFirstUser).
func (a *Auth) RateLimited(op string) {
	if a == nil {
		return
	}
	if c := a.limited[op]; c != nil {
		c.Inc()
	}
}
