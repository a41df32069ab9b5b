package coordinator

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestBodyDeadlineSparesSlowHandlers: the body read deadline ends with
// the body. A handler that answers or streams for longer than the
// deadline, after reading its body or having none (a log follow), is not
// cut: net/http cancels the request's context when a read on the
// connection fails, so a deadline left in place would end it.
func TestBodyDeadlineSparesSlowHandlers(t *testing.T) {
	const deadline = 200 * time.Millisecond
	h := limitBodyRead(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for i := 0; i < 5; i++ { // stream for 5 deadlines
			select {
			case <-r.Context().Done():
				return
			case <-time.After(deadline):
			}
			io.WriteString(w, "tick\n")
			w.(http.Flusher).Flush()
		}
		io.WriteString(w, "done "+string(body)+"\n")
	}), deadline)
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tc := range []struct {
		method, body string
	}{{"GET", ""}, {"POST", "payload"}} {
		req, _ := http.NewRequest(tc.method, srv.URL+"/api/v1/stream", strings.NewReader(tc.body))
		if tc.body == "" {
			req.Body = http.NoBody
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !strings.HasSuffix(string(out), "done "+tc.body+"\n") {
			t.Errorf("%s: stream cut: %q %v", tc.method, out, err)
		}
	}
}
