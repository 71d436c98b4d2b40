// Package web is the request plumbing every handler shares: the adapter that
// turns returned errors into problem responses, JSON decoding with the
// contract's checks, buffered JSON encoding, and the per-request values
// (request id, trace id, logger) the middleware stores in the context.
package web

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/internal/validation"
)

// HandlerFunc is an HTTP handler that returns an error instead of writing one.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// ServeHTTP lets a HandlerFunc be used as an http.Handler.
func (h HandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h(w, r); err != nil {
		WriteError(w, r, err)
	}
}

// Env is what the outermost middleware puts in every request's context.
type Env struct {
	BaseURL string
	Log     *slog.Logger
}

type envKey struct{}
type requestIDKey struct{}
type traceIDKey struct{}

// WithEnv stores env in ctx.
func WithEnv(ctx context.Context, env *Env) context.Context {
	return context.WithValue(ctx, envKey{}, env)
}

func envOf(ctx context.Context) *Env {
	if e, ok := ctx.Value(envKey{}).(*Env); ok {
		return e
	}
	return &Env{BaseURL: "http://localhost:8080", Log: slog.Default()}
}

// Logger returns the request's logger; its lines carry the request and trace ids.
func Logger(ctx context.Context) *slog.Logger { return envOf(ctx).Log }

// WithRequestID stores the request id in ctx.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request's id.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// WithTraceID stores the request's trace id in ctx.
func WithTraceID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, traceIDKey{}, id)
}

// TraceID returns the request's trace id (32 lowercase hex).
func TraceID(ctx context.Context) string {
	id, _ := ctx.Value(traceIDKey{}).(string)
	return id
}

// body is the RFC 9457 problem document.
type body struct {
	Type             string                  `json:"type"`
	Title            string                  `json:"title"`
	Status           int                     `json:"status"`
	Detail           string                  `json:"detail"`
	Instance         string                  `json:"instance"`
	Code             string                  `json:"code"`
	RequestID        string                  `json:"request_id"`
	TraceID          string                  `json:"trace_id"`
	Errors           []validation.FieldError `json:"errors,omitempty"`
	ViolatedPolicies []string                `json:"violated-policies,omitempty"`
	Checks           map[string]string       `json:"checks,omitempty"`
}

// WriteError answers err as a problem. 5xx causes are logged with the
// request's ids; their details never reach the client.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	p := problem.From(Degraded(err))
	kind, ok := problem.Lookup(p.Code)
	if !ok {
		kind, _ = problem.Lookup(problem.Internal)
		p = &problem.Error{Code: problem.Internal, Err: err}
	}
	detail := p.Detail
	if kind.Status >= 500 {
		logFailure(r, kind, err)
		if kind.Code == problem.Internal {
			detail = "internal error; quote the request id when reporting it"
		}
	}
	env := envOf(r.Context())
	b := body{
		Type:      env.BaseURL + "/problems/" + kind.Code,
		Title:     kind.Title,
		Status:    kind.Status,
		Detail:    detail,
		Instance:  r.URL.Path,
		Code:      kind.Code,
		RequestID: RequestID(r.Context()),
		TraceID:   TraceID(r.Context()),
		Errors:    p.Errors,
	}
	if v, ok := p.Extra["violated-policies"].([]string); ok {
		b.ViolatedPolicies = v
	}
	if v, ok := p.Extra["checks"].(map[string]string); ok {
		b.Checks = v
	}
	for k, vs := range p.Header {
		w.Header()[k] = vs
	}
	writeJSON(w, kind.Status, "application/problem+json", b)
}

func logFailure(r *http.Request, kind problem.Kind, err error) {
	level := slog.LevelError
	if kind.Code == problem.Unavailable {
		level = slog.LevelWarn
	}
	Logger(r.Context()).LogAttrs(r.Context(), level, "request failed",
		slog.Int("status", kind.Status), slog.String("code", kind.Code),
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.String("error", err.Error()))
}

// WriteJSON encodes v into a buffer first, so an encoding failure can still be
// answered as a problem instead of a half-written body.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	return writeJSON(w, status, "application/json", v)
}

// buffers are writeJSON's encoding buffers, reused across responses; one
// that grew past maxPooledBuffer (a large list page) is left to the GC.
var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBuffer = 64 << 10

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) error {
	buf := buffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledBuffer {
			buf.Reset()
			buffers.Put(buf)
		}
	}()
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
	return nil
}

// NoContent answers 204.
func NoContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// UTC returns t in UTC, or nil for nil: the contract's timestamps are UTC,
// and optional ones are null.
func UTC(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
