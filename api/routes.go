package api

import (
	"crypto/rand"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/acme/platform/api/auth"
	"github.com/acme/platform/api/idempotency"
	"github.com/acme/platform/api/keys"
	"github.com/acme/platform/api/ping"
	"github.com/acme/platform/api/problem"
	"github.com/acme/platform/api/ratelimit"
	"github.com/acme/platform/api/web"
)

// routes assembles the router and the middleware.
//
// Every request: request id → tracing → metrics and access log → panic
// recovery → deadline → body limit → router.
// Authenticated routes add: authentication and scope → rate limit per
// principal → idempotency (POST) → handler. Public API routes add a rate
// limit per client IP; probes and /metrics are never limited.
func (s *Server) routes() (http.Handler, error) {
	cfg := s.deps.Config
	secret := []byte(cfg.SecretKey)
	if len(secret) == 0 {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
		s.deps.Log.Warn("PLATFORM_SECRET_KEY is not set: cursors are signed with a per-process key and break across replicas and restarts")
	}
	limiter := ratelimit.New(s.deps.Redis, s.deps.Keys, ratelimit.Policies{
		Read: cfg.RateLimitRead, Write: cfg.RateLimitWrite, Anon: cfg.RateLimitAnon,
	}, s.deps.Log, s.deps.Registry)
	authn := auth.NewAuthenticator(&keys.Store{DB: s.deps.DB}, cfg.KeyCacheTTL)
	authn.OnFailure = limiter.ChargeFailedAuth
	idem := idempotency.New(s.deps.Redis, s.deps.Keys, cfg.IdempotencyTTL, s.deps.Log)
	protect := func(scope string, h http.Handler) http.Handler {
		return chain(h, authn.Require(scope), limiter.Principal, idem.Middleware)
	}
	public := func(h http.Handler) http.Handler { return limiter.Anonymous(h) }
	s.openapi = OpenAPI(cfg.PublicBaseURL)

	r := mux.NewRouter()
	s.router = r
	r.Use(markRoute)
	r.NotFoundHandler = public(web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		return problem.Newf(problem.NotFound, "no route for %s %s", r.Method, r.URL.Path)
	}))
	r.MethodNotAllowedHandler = public(web.HandlerFunc(func(w http.ResponseWriter, req *http.Request) error {
		return methodNotAllowed(r, req)
	}))

	r.Handle("/healthz", web.HandlerFunc(s.healthz)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/readyz", web.HandlerFunc(s.readyz)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/metrics", s.metricsHandler()).Methods(http.MethodGet)
	r.Handle("/openapi.json", public(web.HandlerFunc(s.openAPI))).Methods(http.MethodGet)
	r.Handle("/problems/{code}", public(web.HandlerFunc(problemPage))).Methods(http.MethodGet)

	// Resources register full paths on the root router: mux subrouters answer
	// 404 instead of 405 on a method mismatch.
	ping.Routes(r, ping.Deps{DB: s.deps.DB, Redis: s.deps.Redis, Keys: s.deps.Keys,
		Temporal: s.deps.Temporal, TaskQueue: cfg.TaskQueue, Protect: protect})
	keys.Routes(r, keys.Deps{Store: &keys.Store{DB: s.deps.DB}, Protect: protect, Forget: authn.Forget, CursorSecret: secret})

	metrics := newHTTPMetrics(s.deps.Registry)
	return chain(r,
		requestID(cfg.PublicBaseURL, s.deps.Log),
		tracing(s.tracer),
		metrics.observe,
		recoverPanic,
		deadline(cfg.RequestTimeout),
		limitBody(cfg.MaxBodyBytes),
	), nil
}
