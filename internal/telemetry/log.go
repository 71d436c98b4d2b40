// Package telemetry sets up the platform's logs, metrics and traces: one slog
// logger that carries request and workflow ids from the context, one
// Prometheus registry, and one OpenTelemetry tracer provider.
package telemetry

import (
	"context"
	"io"
	"log/slog"
)

type ctxKey struct{}

// WithLogAttrs returns a context whose log lines carry attrs, added to any
// attrs already there. Middleware uses it for request_id and trace_id.
func WithLogAttrs(ctx context.Context, attrs ...slog.Attr) context.Context {
	prev, _ := ctx.Value(ctxKey{}).([]slog.Attr)
	all := make([]slog.Attr, 0, len(prev)+len(attrs))
	all = append(all, prev...)
	all = append(all, attrs...)
	return context.WithValue(ctx, ctxKey{}, all)
}

// NewLogger returns a logger writing JSON or text to w at level; every record
// logged with a context gets that context's attrs.
func NewLogger(w io.Writer, format string, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if format == "text" {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(contextHandler{h})
}

// contextHandler adds the attrs stored by WithLogAttrs to each record.
type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if attrs, ok := ctx.Value(ctxKey{}).([]slog.Attr); ok {
		r.AddAttrs(attrs...)
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(attrs)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}
