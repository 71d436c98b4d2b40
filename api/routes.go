package api

import (
	"crypto/rand"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/idempotency"
	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/api/httpx/ratelimit"
	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/api/jobs"
	"github.com/acme/platform/api/keys"
	"github.com/acme/platform/api/ping"
	"github.com/acme/platform/api/slos"
	"github.com/acme/platform/api/uploads"
	"github.com/acme/platform/api/usage"
	"github.com/acme/platform/api/webhooksecret"
)

// routes assembles the router and the middleware.
//
// Every request: request id → tracing → metrics, access log and usage event
// → panic recovery → deadline → body limit → router.
// Authenticated routes add: authentication and scope → rate limit per
// principal → idempotency (POST) → handler. Public API routes add a rate
// limit per client IP; probes are never limited (/readyz checks its
// dependencies at most once a second whatever the rate). /metrics is served
// only on the ops listener (OpsHandler).
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
	authn.Throttled = limiter.Throttled // before any key lookup
	idem := idempotency.New(s.deps.Redis, s.deps.Keys, cfg.IdempotencyTTL, s.deps.Log)
	authorize := func(scope string, h http.Handler) http.Handler {
		return chain(h, authn.Require(scope), markPrincipal, limiter.Principal, routeReads(s.deps.Reads))
	}
	protect := func(scope string, h http.Handler) http.Handler { return authorize(scope, idem.Middleware(h)) }
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
	r.Handle("/openapi.json", public(web.HandlerFunc(s.openAPI))).Methods(http.MethodGet)
	r.Handle("/problems/{code}", public(web.HandlerFunc(problemPage))).Methods(http.MethodGet)

	// Resources register full paths on the root router: mux subrouters answer
	// 404 instead of 405 on a method mismatch.
	ping.Routes(r, ping.Deps{DB: s.deps.DB, Redis: s.deps.Redis, Keys: s.deps.Keys,
		Temporal: s.deps.Temporal, TaskQueue: cfg.TaskQueue, Protect: protect})
	keys.Routes(r, keys.Deps{Store: &keys.Store{DB: s.deps.DB, Reads: s.deps.Reads}, Protect: protect, Forget: authn.Forget, CursorSecret: secret})
	s.jobRoutes(r, protect, secret)
	// Uploads put their gate and the receiving of the body between the rate
	// limit and idempotency, which then fingerprints the spooled body.
	uploads.Routes(r, uploads.Deps{Store: &uploads.Store{DB: s.deps.DB}, Starter: s.jobStarter(),
		Authorize: authorize, Idempotent: idem.Middleware, Limits: uploads.Limits{
			MaxConcurrent: cfg.UploadMaxConcurrent, MaxPerPrincipal: cfg.UploadMaxConcurrentPerPrincipal,
			MinBytesPerSecond: cfg.UploadMinBytesPerSecond, Grace: cfg.UploadMinRateGrace,
		}})
	s.flagRoutes(r, protect, secret)
	s.drillRoutes(r, protect, secret)
	s.scalingRoutes(r, protect, secret)

	metrics := newHTTPMetrics(s.deps.Registry)
	s.deps.Registry.MustRegister(readinessCollector{s}, idem.Collector())
	registerPoolMetrics(s.deps.Registry, s.deps.DB)
	return chain(r,
		requestID(cfg.PublicBaseURL, s.deps.Log),
		tracing(s.tracer, authn.Authenticated),
		metrics.observe(s.usage),
		recoverPanic,
		shed(cfg.MaxInFlight, s.deps.Registry),
		deadline(cfg.RequestTimeout),
		limitBodies(cfg.MaxBodyBytes, map[string]int64{uploads.Path: cfg.UploadMaxBytes}),
	), nil
}

// jobRoutes registers the background jobs' resources: jobs, usage and the
// webhook signing secret (uploads are registered beside it, in routes).
func (s *Server) jobRoutes(r *mux.Router, protect func(string, http.Handler) http.Handler, secret []byte) {
	cfg := s.deps.Config
	jobStore := &jobs.Store{DB: s.deps.DB, Reads: s.deps.Reads}
	jobs.Routes(r, jobs.Deps{Store: jobStore, Starter: s.jobStarter(), Temporal: s.deps.Temporal, Uploads: &uploads.Store{DB: s.deps.DB},
		TemporalUIURL: cfg.TemporalUIURL, Namespace: cfg.TemporalNamespace, CursorSecret: secret, Protect: protect})
	usage.Routes(r, usage.Deps{Store: &usage.Store{DB: s.deps.DB, Reads: s.deps.Reads}, CursorSecret: secret, Protect: protect})
	slos.Routes(r, slos.Deps{Store: &slos.Store{DB: s.deps.DB}, Protect: protect})
	webhooksecret.Routes(r, webhooksecret.Deps{Store: &webhooksecret.Store{DB: s.deps.DB}, Protect: protect})
}

// jobStarter is the Starter of jobs, ?process=true uploads included.
func (s *Server) jobStarter() *jobs.Starter {
	return &jobs.Starter{Temporal: s.deps.Temporal, TaskQueue: s.deps.Config.TaskQueue, Store: &jobs.Store{DB: s.deps.DB, Reads: s.deps.Reads}}
}

// limitBodies caps request bodies at limit, or at the limit of paths listed
// in byPath (uploads have their own, larger one).
func limitBodies(limit int64, byPath map[string]int64) Middleware {
	return func(next http.Handler) http.Handler {
		def := limitBody(limit)(next)
		special := make(map[string]http.Handler, len(byPath))
		for path, n := range byPath {
			special[path] = limitBody(n)(next)
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if h, ok := special[r.URL.Path]; ok {
				h.ServeHTTP(w, r)
				return
			}
			def.ServeHTTP(w, r)
		})
	}
}
