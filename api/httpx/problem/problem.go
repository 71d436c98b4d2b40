// Package problem turns errors into RFC 9457 problem responses. One table maps
// each problem code to its status and title; handlers return errors and never
// write error bodies themselves.
package problem

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"

	"github.com/acme/platform/internal/validation"
)

// Codes of the contract's error table.
const (
	InvalidJSON                  = "invalid_json"
	ValidationFailed             = "validation_failed"
	InvalidCursor                = "invalid_cursor"
	InvalidIdempotencyKey        = "invalid_idempotency_key"
	Unauthenticated              = "unauthenticated"
	InsufficientScope            = "insufficient_scope"
	NotFound                     = "not_found"
	MethodNotAllowed             = "method_not_allowed"
	RequestTimeout               = "request_timeout"
	Conflict                     = "conflict"
	IdempotencyRequestInProgress = "idempotency_request_in_progress"
	PreconditionFailed           = "precondition_failed"
	PayloadTooLarge              = "payload_too_large"
	UnsupportedMediaType         = "unsupported_media_type"
	IdempotencyKeyReused         = "idempotency_key_reused"
	RateLimited                  = "rate_limited"
	Internal                     = "internal"
	Unavailable                  = "unavailable"
)

// Kind describes one problem code: its status, its stable title and a short
// explanation served at /problems/{code}.
type Kind struct {
	Code   string
	Status int
	Title  string
	About  string
}

var kinds = map[string]Kind{
	InvalidJSON:                  {InvalidJSON, 400, "Request body is not valid JSON", "The request body could not be parsed as JSON. Check for trailing commas, unquoted keys and truncated bodies."},
	ValidationFailed:             {ValidationFailed, 400, "Request validation failed", "A field or parameter is invalid. The errors array names each one with a JSON pointer (#/field) and a code."},
	InvalidCursor:                {InvalidCursor, 400, "Invalid pagination cursor", "The cursor was tampered with, belongs to another principal or was issued for other filters. Start again from the first page."},
	InvalidIdempotencyKey:        {InvalidIdempotencyKey, 400, "Invalid Idempotency-Key", "An Idempotency-Key must be 1 to 255 printable ASCII characters."},
	Unauthenticated:              {Unauthenticated, 401, "Authentication required", "Send a valid, unexpired and unrevoked API key as Authorization: Bearer plk_..."},
	InsufficientScope:            {InsufficientScope, 403, "Insufficient scope", "The API key is valid but lacks the scope this operation needs; the WWW-Authenticate header names it."},
	NotFound:                     {NotFound, 404, "Resource not found", "No such route, or no such resource visible to this principal."},
	MethodNotAllowed:             {MethodNotAllowed, 405, "Method not allowed", "The route exists but not for this method; the Allow header lists the methods it accepts."},
	RequestTimeout:               {RequestTimeout, 408, "Request body too slow", "The request body arrived slower than the server's minimum transfer rate, or not within the request deadline. Retry on a faster connection."},
	Conflict:                     {Conflict, 409, "Conflict with the resource's state", "The request conflicts with the current state of the resource."},
	IdempotencyRequestInProgress: {IdempotencyRequestInProgress, 409, "A request with this Idempotency-Key is in progress", "Another request with the same Idempotency-Key is still running. Retry after the Retry-After delay to get its response."},
	PreconditionFailed:           {PreconditionFailed, 412, "Precondition failed", "If-Match does not match the resource's current ETag. Fetch it again, re-apply the change and retry."},
	PayloadTooLarge:              {PayloadTooLarge, 413, "Payload too large", "The request body is larger than this endpoint accepts."},
	UnsupportedMediaType:         {UnsupportedMediaType, 415, "Unsupported media type", "This endpoint accepts application/json bodies."},
	IdempotencyKeyReused:         {IdempotencyKeyReused, 422, "Idempotency-Key reused for a different request", "This Idempotency-Key was already used with a different body or route. Use a new key for a new request."},
	RateLimited:                  {RateLimited, 429, "Rate limit exceeded", "The principal's quota for this class of request is used up. Retry after Retry-After seconds; RateLimit and RateLimit-Policy describe the quota."},
	Internal:                     {Internal, 500, "Internal error", "The server hit a bug. It has been logged with the request id; quote it when reporting."},
	Unavailable:                  {Unavailable, 503, "Service unavailable", "A dependency is down or the server is shutting down. Retry after Retry-After seconds."},
}

// Lookup returns the kind of code.
func Lookup(code string) (Kind, bool) {
	k, ok := kinds[code]
	return k, ok
}

// Kinds lists every problem kind ordered by status then code.
func Kinds() []Kind {
	out := make([]Kind, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Status != out[j].Status {
			return out[i].Status < out[j].Status
		}
		return out[i].Code < out[j].Code
	})
	return out
}

// Error is an error that carries the problem to answer. Handlers return one
// (or wrap one); the adapter in package web writes it.
type Error struct {
	Code   string
	Detail string
	Errors []validation.FieldError
	// Header holds response headers the problem needs (Allow, Retry-After,
	// WWW-Authenticate, RateLimit).
	Header http.Header
	// Extra holds extension members, such as "violated-policies".
	Extra map[string]any
	// Err is the underlying cause; it is logged, never shown.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Detail, e.Err)
	}
	return e.Code + ": " + e.Detail
}

func (e *Error) Unwrap() error { return e.Err }

// Status is the HTTP status of the problem.
func (e *Error) Status() int {
	if k, ok := kinds[e.Code]; ok {
		return k.Status
	}
	return http.StatusInternalServerError
}

// New returns a problem with a human detail.
func New(code, detail string) *Error { return &Error{Code: code, Detail: detail} }

// Newf is New with formatting.
func Newf(code, format string, args ...any) *Error {
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...)}
}

// Validation returns a validation_failed problem listing errs.
func Validation(errs ...validation.FieldError) *Error {
	detail := "request validation failed"
	if len(errs) > 0 {
		detail = errs[0].Pointer[min(len(errs[0].Pointer), 2):] + " " + errs[0].Detail
	}
	if len(errs) > 1 {
		detail += fmt.Sprintf(" (and %d more)", len(errs)-1)
	}
	return &Error{Code: ValidationFailed, Detail: detail, Errors: errs}
}

// Unavailablef returns a 503 problem with a Retry-After of seconds.
func UnavailableAfter(seconds int, detail string, cause error) *Error {
	e := &Error{Code: Unavailable, Detail: detail, Err: cause, Header: http.Header{}}
	e.Header.Set("Retry-After", strconv.Itoa(max(seconds, 1)))
	return e
}

// Sentinels that lower layers return; From maps them to problems so the
// database and workflow code need not know about HTTP.
var (
	ErrNotFound           = errors.New("not found")
	ErrConflict           = errors.New("conflict")
	ErrPreconditionFailed = errors.New("precondition failed")
	ErrUnavailable        = errors.New("dependency unavailable")
)

// From returns the problem for err: the *Error inside it, or the sentinel it
// wraps, or internal.
func From(err error) *Error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return &Error{Code: NotFound, Detail: "resource not found", Err: err}
	case errors.Is(err, ErrConflict):
		return &Error{Code: Conflict, Detail: "the request conflicts with the resource's state", Err: err}
	case errors.Is(err, ErrPreconditionFailed):
		return &Error{Code: PreconditionFailed, Detail: "If-Match does not match the current ETag", Err: err}
	case errors.Is(err, ErrUnavailable):
		return UnavailableAfter(5, "a dependency is unavailable; retry shortly", err)
	}
	return &Error{Code: Internal, Detail: "internal error", Err: err}
}
