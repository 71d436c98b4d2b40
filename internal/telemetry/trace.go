package telemetry

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Propagator is the W3C traceparent/tracestate and baggage propagator.
var Propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// NewTracerProvider returns a tracer provider sampling new traces at ratio
// and following the parent's decision for continued ones. Spans are not
// exported yet: trace ids still flow through responses, logs and workflows.
func NewTracerProvider(ratio float64) *sdktrace.TracerProvider {
	return sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	)
}

// InstallTracing makes tp and the W3C propagator the process's globals, which
// the Temporal tracing interceptor uses, and returns tp's shutdown.
func InstallTracing(ratio float64) (*sdktrace.TracerProvider, func(context.Context) error) {
	tp := NewTracerProvider(ratio)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(Propagator)
	return tp, tp.Shutdown
}
