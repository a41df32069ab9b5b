package client

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Stable error codes in API error responses ({"message": ..., "code": ...}).
const (
	CodeBadJSON            = "bad_json"
	CodeBadRequest         = "bad_request"
	CodeBodyTooLarge       = "body_too_large"
	CodeUnauthorized       = "unauthorized"
	CodeInvalidCredentials = "invalid_credentials"
	CodeForbidden          = "forbidden"
	CodeNotFound           = "not_found"
	CodeMethodNotAllowed   = "method_not_allowed"
	CodeConflict           = "conflict"
	CodeAlreadySetUp       = "already_set_up"
	CodeNotASession        = "not_a_session"
	CodeRateLimited        = "rate_limited"
	CodeInternal           = "internal"
	// CodeCSRF: a request authenticated by the browser's session cookie
	// changed state without the page's CSRF token.
	CodeCSRF = "csrf_failed"
)

// Error is an API error response.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// RetryAfter is the server's Retry-After for CodeRateLimited.
	RetryAfter time.Duration `json:"-"`
}

func (e *Error) Error() string {
	if e.Message != "" {
		return e.Message
	}
	return fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
}

// ErrorCode returns the API error code in err's chain, or "".
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
