package telemetry

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// NewTracerProvider installs a tracer provider sampling new traces at ratio
// and following the parent's decision for continued ones, and the W3C
// traceparent/tracestate and baggage propagators. Spans are not exported yet:
// trace ids still flow through responses, logs and workflows.
func NewTracerProvider(ratio float64) (*sdktrace.TracerProvider, func(context.Context) error) {
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(
		propagation.TraceContext{}, propagation.Baggage{},
	))
	return tp, tp.Shutdown
}
