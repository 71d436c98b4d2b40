package api

import (
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/api/httpx/web"
)

// shed bounds the requests served at once. When the database slows down,
// requests pile up waiting for a pool connection; past limit, new ones are
// answered 503 with Retry-After at once instead of joining that queue, so
// it stays bounded and the requests already admitted finish. Probes are
// never shed: a shedding process is alive, and /readyz says whether its
// dependencies answer. A limit of 0 (a Config not built by Load) sheds
// nothing.
func shed(limit int, reg prometheus.Registerer) Middleware {
	shedTotal := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "platform_http_shed_total", Help: "Requests answered 503 at once because the process was at PLATFORM_MAX_IN_FLIGHT.",
	})
	if reg != nil {
		reg.MustRegister(shedTotal)
	}
	slots := make(chan struct{}, max(limit, 1))
	return func(next http.Handler) http.Handler {
		if limit <= 0 {
			return next // a Config not from Load: no limit
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
				next.ServeHTTP(w, r)
				return
			}
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
				next.ServeHTTP(w, r)
			default:
				shedTotal.Inc()
				web.WriteError(w, r, problem.UnavailableAfter(1, "the server is at its limit of requests in flight; retry shortly", nil))
			}
		})
	}
}

// registerPoolMetrics exports the database pool's state, so that the
// experiments (and operators) see connections waited for.
func registerPoolMetrics(reg prometheus.Registerer, pool *pgxpool.Pool) {
	if reg == nil || pool == nil {
		return
	}
	stat := func(f func(*pgxpool.Stat) float64) func() float64 { return func() float64 { return f(pool.Stat()) } }
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "platform_db_pool_empty_acquire_total",
			Help: "Connection acquires that had to wait because the pool had no idle connection."},
			stat(func(s *pgxpool.Stat) float64 { return float64(s.EmptyAcquireCount()) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "platform_db_pool_acquire_wait_seconds_total",
			Help: "Time spent waiting for a connection by acquires that found the pool empty."},
			stat(func(s *pgxpool.Stat) float64 { return s.EmptyAcquireWaitTime().Seconds() })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "platform_db_pool_acquired_conns", Help: "Connections in use."},
			stat(func(s *pgxpool.Stat) float64 { return float64(s.AcquiredConns()) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "platform_db_pool_max_conns", Help: "The pool's size."},
			stat(func(s *pgxpool.Stat) float64 { return float64(s.MaxConns()) })),
	)
}
