package web

import (
	"bytes"
	"io"
	"net/http"

	"github.com/devmesh/devmesh/coordinator/client"
)

// inprocHost is the made-up host of in-process API calls.
const inprocHost = "http://devmesh.inproc"

// client returns an API client acting with the browser's session token,
// whose requests go straight to the API's handler in this process: the
// pages get the API's authorization, views and errors without a network
// round trip. The token travels as a bearer token, which needs no CSRF
// token: the page handlers only read through it.
func (w *Web) client(token string) *client.Client {
	c, err := client.New(inprocHost, token, client.WithHTTPClient(&http.Client{Transport: inprocTransport{w.inproc}}))
	if err != nil {
		panic(err) // inprocHost is a valid URL
	}
	return c
}

// inprocTransport is an http.RoundTripper that serves requests with a
// handler and returns the buffered response. It suits the short JSON
// answers the pages read, not streams.
type inprocTransport struct{ h http.Handler }

func (t inprocTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	req.RemoteAddr = "127.0.0.1:0"
	req.RequestURI = req.URL.RequestURI()
	if req.Body == nil {
		req.Body = http.NoBody
	}
	t.h.ServeHTTP(rec, req)
	return &http.Response{
		Status:        http.StatusText(rec.status),
		StatusCode:    rec.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        rec.header,
		Body:          io.NopCloser(&rec.body),
		ContentLength: int64(rec.body.Len()),
		Request:       req,
	}, nil
}

// recorder buffers a handler's response.
type recorder struct {
	header  http.Header
	body    bytes.Buffer
	status  int
	written bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) Write(b []byte) (int, error) {
	r.written = true
	return r.body.Write(b)
}

func (r *recorder) WriteHeader(code int) {
	if !r.written {
		r.status, r.written = code, true
	}
}
