package telemetry

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Propagator is the W3C traceparent/tracestate and baggage propagator.
var Propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// SampleRatioFlag is the platform's own flag holding the share of new traces
// sampled, 0..1. Changing it (an audited flag change) changes sampling in
// every process within the flag provider's reload, without a restart.
const SampleRatioFlag = "platform.tracing.sample_ratio"

// DefaultServiceName names the process in traces unless OTEL_SERVICE_NAME
// (or service.name in OTEL_RESOURCE_ATTRIBUTES) says otherwise.
const DefaultServiceName = "platform"

// RatioSampler samples root spans whose trace id falls below a ratio that
// can change at run time (SetRatio), the same test as the SDK's
// TraceIDRatioBased, so a trace id is sampled alike in every process.
// A client span never starts a trace: a Postgres query, a Redis command or
// an outgoing call with no recording parent is background work (flag polls,
// pool upkeep), not a request worth a trace of its own.
type RatioSampler struct {
	bound atomic.Uint64 // trace ids whose low 63 bits are below it are sampled
	ratio atomic.Uint64 // math.Float64bits of the ratio, for Ratio
}

// NewRatioSampler returns a sampler at ratio (clamped to 0..1).
func NewRatioSampler(ratio float64) *RatioSampler {
	s := &RatioSampler{}
	s.SetRatio(ratio)
	return s
}

// SetRatio changes the share of new traces sampled from now on.
func (s *RatioSampler) SetRatio(ratio float64) {
	if math.IsNaN(ratio) || ratio < 0 {
		ratio = 0
	}
	ratio = min(ratio, 1)
	s.ratio.Store(math.Float64bits(ratio))
	if ratio >= 1 {
		s.bound.Store(math.MaxUint64)
		return
	}
	s.bound.Store(uint64(ratio * (1 << 63)))
}

// Ratio is the share of new traces sampled now.
func (s *RatioSampler) Ratio() float64 { return math.Float64frombits(s.ratio.Load()) }

// ShouldSample implements sdktrace.Sampler for root spans.
func (s *RatioSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	state := trace.SpanContextFromContext(p.ParentContext).TraceState()
	if p.Kind == trace.SpanKindClient {
		return sdktrace.SamplingResult{Decision: sdktrace.Drop, Tracestate: state}
	}
	x := binary.BigEndian.Uint64(p.TraceID[8:16]) >> 1
	if bound := s.bound.Load(); bound == math.MaxUint64 || x < bound {
		return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample, Tracestate: state}
	}
	return sdktrace.SamplingResult{Decision: sdktrace.Drop, Tracestate: state}
}

// Description implements sdktrace.Sampler.
func (s *RatioSampler) Description() string {
	return fmt.Sprintf("PlatformRatio{%g}", s.Ratio())
}

// NewTracerProvider returns a tracer provider without an exporter, sampling
// new traces at ratio and following the parent's decision for continued
// ones. Tests and processes without OTLP export use it.
func NewTracerProvider(ratio float64) *sdktrace.TracerProvider {
	return sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(NewRatioSampler(ratio))))
}

// Tracing is a process's tracer provider and the sampler whose ratio
// follows SampleRatioFlag.
type Tracing struct {
	Provider *sdktrace.TracerProvider
	Sampler  *RatioSampler
	// Exporting says whether spans leave the process (an OTLP endpoint is
	// configured).
	Exporting bool
}

// Shutdown flushes the spans still batched and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error { return t.Provider.Shutdown(ctx) }

// NewTracing builds the process's tracing, configured the OpenTelemetry
// way: OTEL_EXPORTER_OTLP_ENDPOINT (or _TRACES_ENDPOINT) turns export on,
// OTEL_EXPORTER_OTLP_PROTOCOL picks grpc or http/protobuf (the default),
// and OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES describe the process;
// the exporters read their other OTEL_EXPORTER_OTLP_* variables (headers,
// timeout, TLS) themselves. Without an endpoint nothing is exported, but
// trace ids still flow through responses, logs and workflows. Spans are
// exported in batches, off the request path.
func NewTracing(ctx context.Context, ratio float64) (*Tracing, error) {
	t := &Tracing{Sampler: NewRatioSampler(ratio)}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", DefaultServiceName)),
		resource.WithFromEnv(), // OTEL_RESOURCE_ATTRIBUTES, then OTEL_SERVICE_NAME
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithProcessPID(),
	)
	if err != nil {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(t.Sampler)),
	}
	exporter, err := newExporter(ctx)
	if err != nil {
		return nil, err
	}
	if exporter != nil {
		t.Exporting = true
		opts = append(opts, sdktrace.WithBatcher(exporter))
	}
	t.Provider = sdktrace.NewTracerProvider(opts...)
	return t, nil
}

// newExporter returns the OTLP exporter the environment asks for, or nil
// when no endpoint is set.
func newExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, nil
	}
	protocol := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch strings.TrimSpace(protocol) {
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: want grpc or http/protobuf", protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("create otlp %s trace exporter: %w", protocol, err)
	}
	return exp, nil
}

// InstallTracing builds the process's tracing (NewTracing) and makes its
// provider and the W3C propagator the process's globals, which the Temporal
// tracing interceptor and the Postgres, Redis and HTTP client
// instrumentation use.
func InstallTracing(ctx context.Context, ratio float64) (*Tracing, error) {
	t, err := NewTracing(ctx, ratio)
	if err != nil {
		return nil, err
	}
	otel.SetTracerProvider(t.Provider)
	otel.SetTextMapPropagator(Propagator)
	return t, nil
}
