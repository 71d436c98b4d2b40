// Package temporalclient dials the Temporal frontend with the platform's
// logger, metrics handler and tracing interceptor, so that every workflow
// started through it carries the caller's trace context.
package temporalclient

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
	tlog "go.temporal.io/sdk/log"

	"github.com/acme/platform/internal/telemetry"
)

// Options configures Dial.
type Options struct {
	Address   string
	Namespace string
	Logger    *slog.Logger
	Metrics   client.MetricsHandler
}

// Dial connects to Temporal, failing fast when the frontend does not answer.
func Dial(ctx context.Context, o Options) (client.Client, error) {
	// The propagator is explicit so that trace context reaches workflow
	// headers even where no global OpenTelemetry propagator is installed.
	tracing, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{TextMapPropagator: telemetry.Propagator})
	if err != nil {
		return nil, fmt.Errorf("create temporal tracing interceptor: %w", err)
	}
	opts := client.Options{
		HostPort:       o.Address,
		Namespace:      o.Namespace,
		Logger:         tlog.NewStructuredLogger(o.Logger),
		MetricsHandler: o.Metrics,
		Interceptors:   []interceptor.ClientInterceptor{tracing},
		ConnectionOptions: client.ConnectionOptions{
			GetSystemInfoTimeout: 5 * time.Second,
		},
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("dial temporal at %s: %w", o.Address, err)
	}
	return c, nil
}

// Check reports whether the frontend answers within ctx's deadline.
func Check(ctx context.Context, c client.Client) error {
	if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		return fmt.Errorf("temporal health check: %w", err)
	}
	return nil
}
