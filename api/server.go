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
	"github.com/acme/platform/internal/backupstore"
	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/internal/database"
	"github.com/acme/platform/internal/redis"
	"github.com/acme/platform/internal/telemetry"
)

// Deps is what the API needs from the process.
type Deps struct {
	Config config.Config
	DB     *pgxpool.Pool
	// Reads routes GET and list reads to read replicas; nil reads from DB.
	Reads    *database.Router
	Redis    goredis.UniversalClient
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
	// Backups is the backup store GET /v1/backups and drill reports read;
	// nil serves an empty list.
	Backups *backupstore.Store
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
	// checkDeps and now are the readiness check and its clock; tests
	// replace them.
	checkDeps func(context.Context) map[string]string
	now       func() time.Time
	ready     readiness
}

// New builds the server and its routes.
func New(d Deps) (*Server, error) {
	s := &Server{deps: d, tracer: d.Tracer, now: time.Now}
	s.checkDeps = s.checkDependencies
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

// Run serves the API on the configured address and the ops endpoints on the
// ops address until ctx is done, then shuts down (see Serve).
func (s *Server) Run(ctx context.Context) error {
	cfg := s.deps.Config
	public, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	ops, err := net.Listen("tcp", cfg.OpsAddr)
	if err != nil {
		_ = public.Close()
		return fmt.Errorf("listen for ops on %s: %w", cfg.OpsAddr, err)
	}
	return s.Serve(ctx, public, ops)
}

// Serve serves the API on public and OpsHandler on ops until ctx is done,
// then shuts down as a lame duck (see drain).
func (s *Server) Serve(ctx context.Context, public, ops net.Listener) error {
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
	apiSrv := s.httpServer(ctx, s.closeWhenDraining(s.handler))
	opsSrv := s.httpServer(ctx, s.OpsHandler())
	errc := make(chan error, 2)
	go func() { errc <- serveErr("serve http", apiSrv.Serve(public)) }()
	go func() { errc <- serveErr("serve ops", opsSrv.Serve(ops)) }()
	s.deps.Log.Info("api listening", "addr", public.Addr().String(), "ops_addr", ops.Addr().String())
	select {
	case err := <-errc:
		_ = apiSrv.Close()
		_ = opsSrv.Close()
		return err
	case <-ctx.Done():
	}
	return s.drain(ctx, apiSrv, opsSrv, errc)
}

// drain stops the servers once ctx is done, refusing no one. First, for
// ShutdownDelay, /readyz answers 503 while every request is still served,
// and each response asks its client to close the connection, so keep-alive
// connections end at a request boundary: load balancers see the 503 and
// stop sending before anything is refused. Only then does the public
// listener close and in-flight requests get DrainTimeout to finish; the ops
// listener closes last.
func (s *Server) drain(ctx context.Context, apiSrv, opsSrv *http.Server, errc <-chan error) error {
	cfg := s.deps.Config
	s.draining.Store(true)
	s.deps.Log.Info("api draining: /readyz answers 503, still serving",
		"shutdown_delay", cfg.ShutdownDelay, "drain_timeout", cfg.DrainTimeout)
	delay := time.NewTimer(cfg.ShutdownDelay)
	defer delay.Stop()
	select {
	case <-delay.C:
	case err := <-errc:
		_ = apiSrv.Close()
		_ = opsSrv.Close()
		return err
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.DrainTimeout)
	defer cancel()
	if err := apiSrv.Shutdown(shutdownCtx); err != nil {
		_ = opsSrv.Close()
		return fmt.Errorf("drain http: %w", err)
	}
	opsCtx, cancelOps := context.WithTimeout(context.WithoutCancel(ctx), opsShutdownTimeout)
	defer cancelOps()
	if err := opsSrv.Shutdown(opsCtx); err != nil {
		_ = opsSrv.Close()
	}
	for range 2 {
		if err := <-errc; err != nil {
			return err
		}
	}
	s.deps.Log.Info("api stopped")
	return nil
}

// closeWhenDraining adds Connection: close to every response once the
// server drains, so that clients reconnect (to another replica, once the
// balancer has taken this one out) instead of reusing a connection that the
// listener's close would later cut.
func (s *Server) closeWhenDraining(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Draining() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

// opsShutdownTimeout bounds a scrape still running when the API has drained.
const opsShutdownTimeout = 5 * time.Second

// maxHeaderBytes bounds request headers; the request line may be 4 KiB more.
// API keys, trace context and idempotency keys need far less; what is left
// is room for proxies' headers.
const maxHeaderBytes = 16 << 10

func (s *Server) httpServer(ctx context.Context, h http.Handler) *http.Server {
	cfg := s.deps.Config
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       cfg.RequestTimeout + 5*time.Second,
		WriteTimeout:      cfg.RequestTimeout + 5*time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.deps.Log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
}

// serveErr is nil for a server that was shut down, else err wrapped in what.
func serveErr(what string, err error) error {
	if err == nil || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Draining reports whether the server is shutting down.
func (s *Server) Draining() bool { return s.draining.Load() }
