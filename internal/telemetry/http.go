package telemetry

import (
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
)

// TracedTransport gives every request through base a client span (otelhttp)
// under the caller's span, with the global tracer provider. With propagate
// the W3C trace context is sent along; without, the receiver learns nothing
// of our traces (webhook receivers belong to tenants).
func TracedTransport(base http.RoundTripper, propagate bool) http.RoundTripper {
	return &tracedTransport{base: base, traced: otelTransport(base, propagate)}
}

// BaseTransport returns the transport TracedTransport wrapped, or rt itself.
func BaseTransport(rt http.RoundTripper) http.RoundTripper {
	if t, ok := rt.(*tracedTransport); ok {
		return t.base
	}
	return rt
}

type tracedTransport struct{ base, traced http.RoundTripper }

func (t *tracedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return t.traced.RoundTrip(r)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach base.
func (t *tracedTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func otelTransport(base http.RoundTripper, propagate bool) http.RoundTripper {
	prop := propagation.NewCompositeTextMapPropagator() // sends nothing
	if propagate {
		prop = propagation.TraceContext{}
	}
	return otelhttp.NewTransport(base,
		otelhttp.WithPropagators(prop),
		otelhttp.WithMeterProvider(noop.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return "HTTP " + r.Method }),
	)
}
