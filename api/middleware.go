package api

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/felixge/httpsnoop"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/api/usage"
	"github.com/acme/platform/internal/ids"
	"github.com/acme/platform/internal/telemetry"
	"github.com/acme/platform/slo"
)

// Middleware is the shape of every middleware.
type Middleware func(http.Handler) http.Handler

// chain applies ms so that the first is the outermost.
func chain(h http.Handler, ms ...Middleware) http.Handler {
	for i := len(ms) - 1; i >= 0; i-- {
		h = ms[i](h)
	}
	return h
}

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// requestID keeps a well-formed inbound X-Request-Id or makes one, echoes it
// on the response and puts it, with the base URL and logger, in the context.
func requestID(baseURL string, log *slog.Logger) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.Header.Get("X-Request-Id")
			if !validRequestID.MatchString(id) {
				id = ids.New(ids.Request)
			}
			w.Header().Set("X-Request-Id", id)
			ctx := web.WithRequestID(r.Context(), id)
			ctx = telemetry.WithLogAttrs(ctx, slog.String("request_id", id))
			ctx = web.WithEnv(ctx, &web.Env{BaseURL: baseURL, Log: log})
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// tracing starts the request's server span (named "METHOD unmatched" until
// markRoute knows the route) and answers its trace id in X-Trace-Id; an
// invalid traceparent is ignored, never an error. A traceparent is continued
// only when trusted says the request is authenticated; anyone else's starts
// a new trace (sampled at our ratio, not the caller's choice) linked to
// theirs, so an anonymous client can neither force sampling nor graft our
// spans onto a trace of its own. trusted is asked only when a traceparent
// came.
func tracing(tp trace.TracerProvider, trusted func(*http.Request) bool) Middleware {
	return func(next http.Handler) http.Handler { return traced(tp, trusted, next) }
}

// traced is the server span without otelhttp's handler: that one also
// wraps the response writer (observe already does), computes metric
// attributes for a meter we discard and a dozen span attributes per
// request, which made tracing with export cost a sixth of the API's
// throughput (make bench-api). The span keeps the stable HTTP semantic
// conventions' required and recommended attributes; observe adds the route
// and the status when the handler returns.
func traced(tp trace.TracerProvider, trusted func(*http.Request) bool, next http.Handler) http.Handler {
	tracer := tp.Tracer(tracerName)
	// Trace context only: a client's baggage would otherwise ride in the
	// Temporal headers of everything the request starts.
	prop := propagation.TraceContext{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		method := normalMethod(r.Method)
		opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(serverAttrs(r, method)...)}
		if r.Header.Get("Traceparent") != "" {
			remote := trace.SpanContextFromContext(prop.Extract(ctx, propagation.HeaderCarrier(r.Header)))
			switch {
			case !remote.IsValid():
			case trusted != nil && trusted(r):
				ctx = trace.ContextWithRemoteSpanContext(ctx, remote)
			default:
				opts = append(opts, trace.WithNewRoot(), trace.WithLinks(trace.Link{SpanContext: remote}))
			}
		}
		ctx, span := tracer.Start(ctx, method+" "+unmatched, opts...)
		defer span.End()
		tid := span.SpanContext().TraceID().String()
		w.Header().Set("X-Trace-Id", tid)
		ctx = web.WithTraceID(ctx, tid)
		ctx = telemetry.WithLogAttrs(ctx, slog.String("trace_id", tid))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// tracerName is the instrumentation scope of the API's server spans.
const tracerName = "github.com/acme/platform/api"

// maxSpanUserAgent bounds the user agent a span records.
const maxSpanUserAgent = 256

// serverAttrs are the server span's attributes known before routing, each
// bounded: a client chooses the path and the user agent.
func serverAttrs(r *http.Request, method string) []attribute.KeyValue {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	attrs := make([]attribute.KeyValue, 0, 8) // room for route and status
	attrs = append(attrs, semconv.HTTPRequestMethodKey.String(method), semconv.URLScheme(scheme),
		semconv.URLPath(truncate(r.URL.Path, maxLoggedPath)))
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		attrs = append(attrs, semconv.ClientAddress(host))
	}
	if ua := r.UserAgent(); ua != "" {
		attrs = append(attrs, semconv.UserAgentOriginal(truncate(ua, maxSpanUserAgent)))
	}
	return attrs
}

// endServerSpan names the request's server span by its route template (the
// span started before mux matched) and records the status: a 5xx is an
// error of the server, a 4xx the client's.
func endServerSpan(r *http.Request, method, route string, status int) {
	span := trace.SpanFromContext(r.Context())
	if !span.IsRecording() {
		return
	}
	if route != unmatched {
		span.SetName(method + " " + route)
		span.SetAttributes(semconv.HTTPRoute(route), semconv.HTTPResponseStatusCode(status))
	} else {
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	}
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
}

// recoverPanic answers a panic as 500 internal and logs it with the request id.
func recoverPanic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				web.Logger(r.Context()).ErrorContext(r.Context(), "panic in handler", "panic", v)
				web.WriteError(w, r, problem.Newf(problem.Internal, "panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// deadline bounds every request; the context reaches pgx, go-redis and
// Temporal calls, which give up when it expires.
func deadline(d time.Duration) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// limitBody caps request bodies; DecodeJSON turns the overflow into 413.
func limitBody(n int64) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > n {
				web.WriteError(w, r, problem.Newf(problem.PayloadTooLarge, "request body is larger than %d bytes", n))
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, n)
			next.ServeHTTP(w, r)
		})
	}
}

// otherMethod stands for every method outside the standard set, as otelhttp
// and the OpenTelemetry HTTP conventions spell it.
const otherMethod = "_OTHER"

// normalMethod is the method as metrics, usage events, logs and span names
// record it. Go's server accepts any token as a method, up to the size of
// the request line; recording it as sent would let one client create
// unbounded metric series, usage rows and log lines.
func normalMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return otherMethod
}

// maxLoggedPath bounds the path in the access log; the rest is cut.
const maxLoggedPath = 256

// httpMetrics are the RED metrics of the API, labelled by normalised method
// and route template so that ids in paths do not explode cardinality.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total", Help: "HTTP requests by method, route template, status and endpoint class.",
		}, []string{"method", "route", "status", "class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "http_request_duration_seconds", Help: "HTTP request latency by method, route template and endpoint class.",
			Buckets: slo.LatencyBuckets,
		}, []string{"method", "route", "class"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "http_requests_in_flight", Help: "HTTP requests being served.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.inFlight)
	return m
}

// requestInfo is filled in as the request travels inward: the route template
// once mux has matched (markRoute), the principal once authenticated
// (markPrincipal). observe reads it after the handler returns.
type requestInfo struct {
	route     string
	principal string
}

type infoKey struct{}

// unmatched is the route of a request no route matched (404, 405).
const unmatched = "unmatched"

// observe records, for every request, the RED metrics, one access-log line
// and one usage event (when a recorder is set) — one response wrapper for all
// three.
func (m *httpMetrics) observe(recorder *usage.Recorder) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info := &requestInfo{route: unmatched, principal: usage.Anonymous}
			r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
			m.inFlight.Inc()
			defer m.inFlight.Dec()
			start := time.Now()
			mt := httpsnoop.CaptureMetrics(next, w, r)
			method := normalMethod(r.Method)
			// The SLO class derives from the method and template alone.
			class := string(slo.ClassOf(method, info.route))
			m.requests.WithLabelValues(method, info.route, strconv.Itoa(mt.Code), class).Inc()
			m.duration.WithLabelValues(method, info.route, class).Observe(mt.Duration.Seconds())
			endServerSpan(r, method, info.route, mt.Code)
			if recorder != nil && info.billable(mt.Code) {
				recorder.Record(usage.Event{At: start, Principal: info.principal, Route: method + " " + info.route,
					Status: mt.Code, Latency: mt.Duration})
			}
			logRequest(r, method, info.route, mt)
		})
	}
}

// probes are routes whose anonymous requests are not usage.
var probes = map[string]bool{"/healthz": true, "/readyz": true}

// billable reports whether the request becomes a usage event (a row in
// usage_events). Every authenticated request does. An anonymous one does
// only when it matched a route, is not a probe and was not refused by the
// limiter: so anonymous traffic adds at most the per-IP quota's worth of
// rows, and unmatched paths, made-up methods, 429s and probe floods add
// none. The metrics still count all of them, under bounded labels.
func (info *requestInfo) billable(status int) bool {
	if info.principal != usage.Anonymous {
		return true
	}
	return info.route != unmatched && !probes[info.route] && status != http.StatusTooManyRequests
}

func logRequest(r *http.Request, method, route string, mt httpsnoop.Metrics) {
	level := slog.LevelInfo
	if mt.Code >= 500 {
		level = slog.LevelWarn
	}
	log := web.Logger(r.Context())
	if !log.Enabled(r.Context(), level) {
		return
	}
	log.LogAttrs(r.Context(), level, "http request",
		slog.String("method", method), slog.String("route", route), slog.String("path", truncate(r.URL.Path, maxLoggedPath)),
		slog.Int("status", mt.Code), slog.Int64("bytes", mt.Written),
		slog.Float64("duration_ms", float64(mt.Duration.Microseconds())/1000))
}

// markRoute is router middleware: it runs after mux matched a route. The
// server span started before mux matched (tracing is outside the router), so
// observe names it and gives it http.route from what markRoute records.
func markRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := routeTemplate(r)
		if info, ok := r.Context().Value(infoKey{}).(*requestInfo); ok {
			info.route = route
		}
		next.ServeHTTP(w, r)
	})
}

// markPrincipal runs right after authentication: usage is per principal.
func markPrincipal(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info, ok := r.Context().Value(infoKey{}).(*requestInfo); ok {
			if p, ok := auth.FromContext(r.Context()); ok {
				info.principal = p.Name
			}
		}
		next.ServeHTTP(w, r)
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func routeTemplate(r *http.Request) string {
	if rt := mux.CurrentRoute(r); rt != nil {
		if t, err := rt.GetPathTemplate(); err == nil {
			return t
		}
	}
	if info, ok := r.Context().Value(infoKey{}).(*requestInfo); ok {
		return info.route
	}
	return unmatched
}
