package api

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/singleflight"

	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/internal/redis"
	"github.com/acme/platform/internal/temporalclient"
)

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	return web.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyCacheFor is how long one dependency check answers every probe.
const readyCacheFor = time.Second

// readiness is the last dependency check and when it was made.
type readiness struct {
	flight singleflight.Group
	mu     sync.Mutex
	checks map[string]string
	at     time.Time
}

// readyz answers from a dependency check at most readyCacheFor old, and 503
// as soon as the server drains.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	checks := maps.Clone(s.dependencies(r.Context()))
	if s.Draining() {
		checks["draining"] = "server is shutting down"
		// closeWhenDraining may have looked before draining began: this
		// answer says draining, so it closes the connection itself.
		w.Header().Set("Connection", "close")
	}
	var failed []string
	for name, result := range checks {
		if result != "ok" {
			failed = append(failed, name)
		}
	}
	if len(failed) == 0 {
		return web.WriteJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": checks})
	}
	sort.Strings(failed)
	p := problem.UnavailableAfter(5, "not ready: "+strings.Join(failed, ", "), nil)
	p.Extra = map[string]any{"checks": checks}
	return p
}

// dependencies returns the cached check, or makes one: concurrent probes
// share a single check (singleflight), so a probe flood costs Postgres,
// Redis and Temporal at most one ping each per readyCacheFor.
func (s *Server) dependencies(ctx context.Context) map[string]string {
	if checks, ok := s.cachedChecks(); ok {
		return checks
	}
	v, _, _ := s.ready.flight.Do("readyz", func() (any, error) {
		if checks, ok := s.cachedChecks(); ok {
			return checks, nil // a flight that just ended made it
		}
		at := s.now()
		// Not the first prober's hang-up: the others wait for this check.
		checks := s.checkDeps(context.WithoutCancel(ctx))
		s.ready.mu.Lock()
		s.ready.checks, s.ready.at = checks, at
		s.ready.mu.Unlock()
		return checks, nil
	})
	return v.(map[string]string)
}

func (s *Server) cachedChecks() (map[string]string, bool) {
	s.ready.mu.Lock()
	defer s.ready.mu.Unlock()
	if s.ready.checks == nil || s.now().Sub(s.ready.at) >= readyCacheFor {
		return nil, false
	}
	return s.ready.checks, true
}

// checkDependencies pings every dependency in parallel, each within two
// seconds.
func (s *Server) checkDependencies(ctx context.Context) map[string]string {
	probes := map[string]func(context.Context) error{
		"postgres": func(ctx context.Context) error { return s.deps.DB.Ping(ctx) },
		"redis":    func(ctx context.Context) error { return redis.Ping(ctx, s.deps.Redis) },
		"temporal": func(ctx context.Context) error { return temporalclient.Check(ctx, s.deps.Temporal) },
	}
	// A server built without a dependency (unit tests) is not ready for it.
	missing := errors.New("not configured")
	if s.deps.DB == nil {
		probes["postgres"] = func(context.Context) error { return missing }
	}
	if s.deps.Redis == nil {
		probes["redis"] = func(context.Context) error { return missing }
	}
	if s.deps.Temporal == nil {
		probes["temporal"] = func(context.Context) error { return missing }
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := make(map[string]string, len(probes)+1)
	for name, probe := range probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			result := "ok"
			if err := probe(ctx); err != nil {
				// Name the failure without driver internals.
				result = "unreachable"
			}
			mu.Lock()
			out[name] = result
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// OpsHandler serves the operations endpoints, /metrics, /healthz and
// /readyz, for the ops listener (PLATFORM_OPS_ADDR). /metrics is only here:
// it names every flag and route and is costly to render, so it stays off the
// public port. The probes are on both, because load balancers probe the
// public one.
func (s *Server) OpsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metricsHandler())
	mux.Handle("GET /healthz", web.HandlerFunc(s.healthz))
	mux.Handle("GET /readyz", web.HandlerFunc(s.readyz))
	mux.Handle("/", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		return problem.New(problem.NotFound, "the ops listener serves /metrics, /healthz and /readyz")
	}))
	return requestID(s.deps.Config.PublicBaseURL, s.deps.Log)(mux)
}

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.deps.Registry, promhttp.HandlerOpts{Registry: s.deps.Registry})
}

// dependencyReady is the readiness of each dependency as the API sees it.
var dependencyReady = prometheus.NewDesc("platform_dependency_ready",
	"1 when the API reached the dependency (postgres, redis, temporal) in its last readiness check, else 0.",
	[]string{"dependency"}, nil)

// readinessCollector exports the readiness check as gauges, so alerts see a
// dependency down even when no load balancer probes this replica. A scrape
// shares the cached check with /readyz: at most one ping per second.
type readinessCollector struct{ s *Server }

// Describe implements prometheus.Collector.
func (c readinessCollector) Describe(ch chan<- *prometheus.Desc) { ch <- dependencyReady }

// Collect implements prometheus.Collector. A scrape has no request context;
// the check bounds each ping by itself.
func (c readinessCollector) Collect(ch chan<- prometheus.Metric) {
	for name, result := range c.s.dependencies(context.Background()) {
		v := 0.0
		if result == "ok" {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(dependencyReady, prometheus.GaugeValue, v, name)
	}
}
