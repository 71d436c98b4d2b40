package api

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/internal/redis"
	"github.com/acme/platform/internal/temporalclient"
)

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	return web.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz checks every dependency in parallel, each within two seconds.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	checks := s.checkDependencies(r.Context())
	if s.Draining() {
		checks["draining"] = "server is shutting down"
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

func (s *Server) checkDependencies(ctx context.Context) map[string]string {
	probes := map[string]func(context.Context) error{
		"postgres": func(ctx context.Context) error { return s.deps.DB.Ping(ctx) },
		"redis":    func(ctx context.Context) error { return redis.Ping(ctx, s.deps.Redis) },
		"temporal": func(ctx context.Context) error { return temporalclient.Check(ctx, s.deps.Temporal) },
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

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.deps.Registry, promhttp.HandlerOpts{Registry: s.deps.Registry})
}
