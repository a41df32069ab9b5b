package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/devmesh/devmesh/coordinator/client"
)

// maxBodyBytes bounds every request body.
const maxBodyBytes = 64 << 10

// apiError is an error with its HTTP status and a message fit for users.
// Handlers return one to choose the response; any other error is logged
// and answered with a generic 500.
type apiError struct {
	status     int
	code       string
	message    string
	retryAfter time.Duration // sets Retry-After when non-zero
}

func (e *apiError) Error() string { return e.message }

func newError(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, client.CodeBadRequest, format, args...)
}

var (
	errNotFound         = newError(http.StatusNotFound, client.CodeNotFound, "not found")
	errMethodNotAllowed = newError(http.StatusMethodNotAllowed, client.CodeMethodNotAllowed, "method not allowed")
	errUnauthorized     = newError(http.StatusUnauthorized, client.CodeUnauthorized,
		"missing, invalid or expired credentials; log in again with `devmesh login`")
	errForbidden    = newError(http.StatusForbidden, client.CodeForbidden, "this needs the admin role")
	errBodyTooLarge = newError(http.StatusRequestEntityTooLarge, client.CodeBodyTooLarge,
		"request body larger than %d bytes", maxBodyBytes)
	errInternal = newError(http.StatusInternalServerError, client.CodeInternal,
		"internal error; see the coordinator's log")
)

// handlerFunc is an API handler: it writes a success response itself and
// returns an error for anything else.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// public adapts a handler that needs no authentication.
func (a *API) public(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.finish(w, r, h(w, r))
	})
}

// finish writes err (if any) as the response.
func (a *API) finish(w http.ResponseWriter, r *http.Request, err error) {
	if err == nil {
		return
	}
	var ae *apiError
	if !errors.As(err, &ae) {
		a.log.ErrorContext(r.Context(), "api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		ae = errInternal
	}
	writeError(w, ae)
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.retryAfter.Seconds()))))
	}
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="devmesh"`)
	}
	writeJSON(w, e.status, client.Error{Code: e.code, Message: e.message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v) // the client went away if this fails; nothing to do
}

// decodeJSON reads exactly one JSON value from the body into into,
// rejecting unknown fields, trailing data and bodies over maxBodyBytes.
func decodeJSON(w http.ResponseWriter, r *http.Request, into any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return jsonError(err)
		}
		return newError(http.StatusBadRequest, client.CodeBadJSON, "malformed JSON: trailing data after the object")
	}
	return nil
}

func jsonError(err error) error {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return errBodyTooLarge
	case errors.Is(err, io.EOF):
		return newError(http.StatusBadRequest, client.CodeBadJSON, "malformed JSON: empty body")
	}
	// encoding/json messages name the field or offset, never the value.
	return newError(http.StatusBadRequest, client.CodeBadJSON, "malformed JSON: %v", err)
}
