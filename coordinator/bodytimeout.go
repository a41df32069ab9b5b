package coordinator

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// limitBodyRead gives each request body a read deadline of d (against
// slow-body attacks: one byte every few seconds would otherwise hold a
// connection and a handler forever). The deadline is set only while a
// body is being read and is cleared once it is read to its end, so a
// handler that answers slowly, or streams, after reading its body is not
// cut; requests without a body (GETs, log follows, the control and DERP
// upgrades) get none. The connection-hijacking routes are exempt by path
// as well, since a deadline would outlive the hijack.
func limitBodyRead(next http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || isLongLived(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(d)); err != nil {
			// Not a net/http connection (e.g. a test recorder): no
			// deadline to set.
			next.ServeHTTP(w, r)
			return
		}
		r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
		next.ServeHTTP(w, r)
	})
}

// isLongLived reports whether path is a connection that outlives its
// request: the Noise control channel and the DERP relay.
func isLongLived(path string) bool {
	return path == "/ts2021" || path == "/derp" || strings.HasPrefix(path, "/derp/")
}

// deadlineBody clears the connection's read deadline once the body has
// been read to its end (or failed), so that net/http's background read,
// which watches for the client going away while the handler runs, is not
// cut by it.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	once sync.Once
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.once.Do(func() { b.rc.SetReadDeadline(time.Time{}) })
	}
	return n, err
}
