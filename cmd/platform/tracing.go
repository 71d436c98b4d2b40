package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/internal/telemetry"
)

// installTracing installs the process's tracer provider (OTLP export when
// OTEL_EXPORTER_OTLP_ENDPOINT is set) sampling new traces at
// PLATFORM_TRACE_SAMPLE_RATIO until the flag platform.tracing.sample_ratio
// says otherwise.
func installTracing(ctx context.Context, cfg config.Config, log *slog.Logger) (*telemetry.Tracing, error) {
	t, err := telemetry.InstallTracing(ctx, cfg.TraceSampleRatio)
	if err != nil {
		return nil, err
	}
	log.Info("tracing", "exporting", t.Exporting, "sample_ratio", cfg.TraceSampleRatio, "ratio_flag", telemetry.SampleRatioFlag)
	return t, nil
}

// shutdownTracing exports the spans still batched, for at most 5 seconds.
func shutdownTracing(ctx context.Context, t *telemetry.Tracing, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := t.Shutdown(ctx); err != nil {
		log.Warn("spans lost at shutdown", "error", err)
	}
}
