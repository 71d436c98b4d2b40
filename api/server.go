// Package api is the platform's HTTP API: the router, the middleware every
// route shares (in one visible order in routes.go), the operations endpoints
// and graceful shutdown. Resources live in subpackages, one per resource.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/client"

	"github.com/acme/platform/api/usage"
	"github.com/acme/platform/flags/provider"
	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/internal/redis"
	"github.com/acme/platform/internal/telemetry"
)

// Deps is what the API needs from the process.
type Deps struct {
	Config   config.Config
	DB       *pgxpool.Pool
	Redis    *goredis.Client
	Keys     redis.Keys
	Temporal client.Client
	Registry *prometheus.Registry
	Log      *slog.Logger
	// Tracer makes the request spans; nil uses the global provider when one
	// is installed, else a private one sampling at the configured ratio.
	Tracer trace.TracerProvider
	// Flags is the process's OpenFeature runtime: the flag snapshot OFREP
	// evaluates and the client the platform's own code uses. Nil serves
	// OFREP from a snapshot loaded per request.
	Flags *provider.Runtime
}

// Server is the API server.
type Server struct {
	deps     Deps
	handler  http.Handler
	router   *mux.Router
	openapi  map[string]any
	tracer   trace.TracerProvider
	usage    *usage.Recorder // nil without a database
	draining atomic.Bool
}

// New builds the server and its routes.
func New(d Deps) (*Server, error) {
	s := &Server{deps: d, tracer: d.Tracer}
	if s.tracer == nil {
		s.tracer = otel.GetTracerProvider()
		if _, isSDK := s.tracer.(*sdktrace.TracerProvider); !isSDK {
			s.tracer = telemetry.NewTracerProvider(d.Config.TraceSampleRatio)
		}
	}
	if d.DB != nil {
		s.usage = usage.NewRecorder(d.DB, d.Log, d.Registry)
	}
	h, err := s.routes()
	if err != nil {
		return nil, err
	}
	s.handler = h
	return s, nil
}

// RunUsage writes the usage events of requests in batches until ctx is done,
// then writes what is left. Serve runs it; a caller serving Handler itself
// runs it beside.
func (s *Server) RunUsage(ctx context.Context) error {
	if s.usage == nil {
		<-ctx.Done()
		return nil
	}
	return s.usage.Run(ctx)
}

// FlushUsage writes the buffered usage events now.
func (s *Server) FlushUsage(ctx context.Context) error {
	if s.usage == nil {
		return nil
	}
	return s.usage.Flush(ctx)
}

// Handler is the server's whole handler, middleware included.
func (s *Server) Handler() http.Handler { return s.handler }

// Run serves on the configured address until ctx is done, then drains.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.deps.Config.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.deps.Config.HTTPAddr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is done. Then /readyz turns 503 so load
// balancers stop sending traffic, the listener closes, and in-flight requests
// get DrainTimeout to finish.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	cfg := s.deps.Config
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       cfg.RequestTimeout + 5*time.Second,
		WriteTimeout:      cfg.RequestTimeout + 5*time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.deps.Log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	// Usage events are flushed once more after the last request has drained.
	usageCtx, stopUsage := context.WithCancel(context.WithoutCancel(ctx))
	usageDone := make(chan error, 1)
	go func() { usageDone <- s.RunUsage(usageCtx) }()
	defer func() {
		stopUsage()
		if err := <-usageDone; err != nil {
			s.deps.Log.Warn("usage events lost at shutdown", "error", err)
		}
	}()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.deps.Log.Info("api listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	s.draining.Store(true)
	s.deps.Log.Info("api draining", "drain_timeout", cfg.DrainTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.DrainTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("drain http: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	s.deps.Log.Info("api stopped")
	return nil
}

// Draining reports whether the server is shutting down.
func (s *Server) Draining() bool { return s.draining.Load() }
