package coordinator

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"expvar"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"
)

// requestIDHeader carries a request's ID: a client's (or proxy's) is
// kept when it looks like one, else one is made; either is echoed.
const requestIDHeader = "X-Request-ID"

type requestIDKey struct{}

// RequestID returns the ID of the request ctx belongs to ("" if none).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// observe wraps the coordinator's handler: it gives each request an ID
// (X-Request-ID, echoed), counts it by route pattern and status, and
// writes one access log line. The line names the route pattern and the
// path (without the query string, which is never logged; the login
// link's secret ID is masked) and never a header, so no token, password
// or cookie reaches the log. Health checks and scrapes log at debug.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(requestIDHeader)
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set(requestIDHeader, id)
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
		rec := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		d := time.Since(start)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		s.metrics.HTTP.Observe(route, rec.code(), d)
		level := slog.LevelInfo
		if quietRoutes[route] {
			level = slog.LevelDebug
		}
		// The request ID is added by requestIDHandler from the context.
		s.log.LogAttrs(r.Context(), level, "http request",
			slog.String("method", r.Method),
			slog.String("route", route),
			slog.String("path", logPath(r.URL.Path)),
			slog.Int("status", rec.code()),
			slog.Int64("bytes", rec.bytes),
			slog.Duration("duration", d),
			slog.String("remote", remoteIP(r.RemoteAddr)),
		)
	})
}

// requestIDHandler adds the request ID to every record logged with the
// request's context (the access line, and handlers' *Context logs), so
// an error line and its request's access line share request_id.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, rec slog.Record) error {
	if id := RequestID(ctx); id != "" {
		rec.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, rec)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// quietRoutes are polled by machines; their access lines are debug.
var quietRoutes = map[string]bool{"GET /healthz": true, "GET /readyz": true, "/metrics": true, "GET /metrics": true}

// validRequestID accepts a client's ID of 1-64 letters, digits, '-',
// '_' and '.': enough for UUIDs and tracing IDs, nothing that could
// forge log lines.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// logPath masks path segments that are secrets: the interactive login
// link's ID lets whoever holds it log a machine in.
func logPath(p string) string {
	if strings.HasPrefix(p, "/login/node/") {
		return "/login/node/REDACTED"
	}
	if len(p) > 256 {
		return p[:256] + "..."
	}
	return p
}

func remoteIP(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// statusWriter records the status and size of a response. It passes
// Flush and Hijack through (log follows, the control and DERP upgrades)
// and unwraps for http.ResponseController.
type statusWriter struct {
	http.ResponseWriter
	status   int
	bytes    int64
	hijacked bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return c, rw, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// code is the response's status: 101 for a hijacked connection (the
// upgrade's answer is written on the raw connection), 200 when the
// handler wrote nothing.
func (w *statusWriter) code() int {
	switch {
	case w.hijacked:
		return http.StatusSwitchingProtocols
	case w.status == 0:
		return http.StatusOK
	}
	return w.status
}

// debugHandler serves the Go profiler (/debug/pprof/...) and the
// process's expvars (/debug/vars: memory statistics, command line,
// tailscale's package counters).
func debugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/debug/vars", expvar.Handler())
	return mux
}
