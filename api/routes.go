package api

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/acme/platform/api/ping"
	"github.com/acme/platform/api/problem"
	"github.com/acme/platform/api/web"
)

// routes assembles the router and the middleware, outermost first:
// request id → tracing → metrics and access log → panic recovery →
// deadline → body limit → router (route-level middleware inside).
func (s *Server) routes() (http.Handler, error) {
	cfg := s.deps.Config
	r := mux.NewRouter()
	r.Use(markRoute)
	r.NotFoundHandler = web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		return problem.Newf(problem.NotFound, "no route for %s %s", r.Method, r.URL.Path)
	})
	r.MethodNotAllowedHandler = web.HandlerFunc(func(w http.ResponseWriter, req *http.Request) error {
		return methodNotAllowed(r, req)
	})

	r.Handle("/healthz", web.HandlerFunc(s.healthz)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/readyz", web.HandlerFunc(s.readyz)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/metrics", s.metricsHandler()).Methods(http.MethodGet)
	r.Handle("/problems/{code}", web.HandlerFunc(problemPage)).Methods(http.MethodGet)

	// Resources register full paths on the root router: mux subrouters answer
	// 404 instead of 405 on a method mismatch.
	ping.Routes(r, ping.Deps{DB: s.deps.DB, Redis: s.deps.Redis, Keys: s.deps.Keys,
		Temporal: s.deps.Temporal, TaskQueue: cfg.TaskQueue})

	metrics := newHTTPMetrics(s.deps.Registry)
	return chain(r,
		requestID(cfg.PublicBaseURL, s.deps.Log),
		tracing,
		metrics.observe,
		recoverPanic,
		deadline(cfg.RequestTimeout),
		limitBody(cfg.MaxBodyBytes),
	), nil
}
