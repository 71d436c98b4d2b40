// Package idempotency implements the contract's Idempotency-Key for POST
// requests (the IETF draft "The Idempotency-Key HTTP Header Field", with the
// contract's choices): the first request with a key claims it in Redis and
// runs; a retry with the same key and body gets the stored response with
// Idempotent-Replayed: true; the same key with another body or on another
// route is 422 idempotency_key_reused; a retry while the first still runs is
// 409 idempotency_request_in_progress with Retry-After.
//
// Decisions where the contract leaves room:
//
//   - Only POST honours the key. The contract names POST ("on any POST") and
//     ignores the key on GET, PUT and DELETE; PATCH is not named (the draft
//     does cover it). PATCH ignores the key too: our PATCH routes honour
//     If-Match, which already makes a retry safe (a repeated change fails the
//     precondition with 412), and one retry mechanism per method is easier to
//     explain than two overlapping ones.
//   - A record is scoped to (principal, API key, method, route, key): only
//     the credential that made a request gets its replay, after passing
//     authentication and the route's scope again (the middleware runs inside
//     them). Another key of the same principal runs the handler, whose own
//     authorization then decides; the resource id it derives is the same
//     (see ResourceID), so the store's collision handling answers instead of
//     a duplicate being created.
//   - The fingerprint covers the method, the escaped path (the ids in it),
//     the query in canonical order, the media type and the body's SHA-256:
//     the same key on /v1/rollouts/rol_B/abort after rol_A is 422, not a
//     replay of rol_A's answer.
//   - The contract also says "same key, different route → 422": a key is
//     additionally bound to the first "METHOD route" it was used on, per
//     principal, for the same retention, and using it on another route is
//     422, as Stripe does.
//     A key is meant to name one operation; reusing it elsewhere is a client
//     bug that should fail loudly, not silently start a second operation.
//     The binding is released with the key (5xx, panic), so a failed first
//     attempt does not pin the key to its route.
//   - A response marked Cache-Control: no-store carries a secret (a new API
//     key, a rotated webhook secret). Its body is never stored, encrypted or
//     not: the key is kept as a tombstone, and a retry gets 409 conflict
//     naming what was created. The contract shows a secret once; a key that
//     would re-show it to whoever holds the Idempotency-Key is a second copy
//     of the secret with a weaker guard, and encryption would only move the
//     question to who holds PLATFORM_SECRET_KEY.
//   - Responses are stored only up to 1 MiB of body. A bigger response still
//     reaches the client, but the key is released: a retry runs the handler
//     again, which is safe because handlers derive resource ids from the key
//     (see ResourceID). Large bodies belong to downloads, not to POSTs.
//   - While the first request runs, the claim lasts until the request's
//     deadline plus a grace period (the TTL when there is no deadline), so a
//     crashed process does not leave the key "in progress" for a day.
//   - Without Redis the request runs without a record (a warning is logged
//     once per outage); duplicates are then prevented by ResourceID alone.
//   - A replayed body is the original one, except that a stored problem
//     document gets the current request's request_id and trace_id, as its
//     X-Request-Id and X-Trace-Id headers do.
//   - Claiming, storing and releasing use a bounded context detached from
//     the client: a request that arrived whole runs and is recorded even if
//     its client hangs up at once, as the Starter's start is.
//   - A route that receives its body itself (uploads spool to disk) passes
//     its SHA-256 with WithBodySHA256, and the middleware does not read it.
package idempotency

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/internal/redis"
)

// DefaultTTL is how long a completed request's response is kept when New is
// given no TTL; the contract publishes 24 hours.
const DefaultTTL = 24 * time.Hour

const (
	// maxStoredBody caps the body kept for replays.
	maxStoredBody = 1 << 20
	// lockGrace is how long a claim outlives the request's deadline, for a
	// handler that finishes its last write after the deadline.
	lockGrace = 10 * time.Second
	// redisTimeout bounds claiming the key and writing the outcome, which
	// must happen even when the request's own context is done.
	redisTimeout = 2 * time.Second
)

// Store keeps idempotency records in Redis.
type Store struct {
	rdb     goredis.UniversalClient
	keys    redis.Keys
	ttl     time.Duration
	log     *slog.Logger
	maxBody int
	down    atomic.Bool // Redis failed and has not answered since
}

// New returns a store that keeps responses for ttl after completion
// (DefaultTTL when ttl is not positive) under keys' prefix.
func New(rdb goredis.UniversalClient, keys redis.Keys, ttl time.Duration, log *slog.Logger) *Store {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if log == nil {
		log = slog.Default()
	}
	return &Store{rdb: rdb, keys: keys, ttl: ttl, log: log, maxBody: maxStoredBody}
}

// Collector exports idempotency_store_down: 1 from a failed claim in Redis
// until Redis answers a claim again. Requests then run without a record
// (duplicates are prevented by ResourceID alone, replays stop), which is
// what the IdempotencyStoreDown alert pages for.
func (s *Store) Collector() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "idempotency_store_down",
		Help: "1 while the idempotency store (Redis) failed its last claim: keyed requests run without a record.",
	}, func() float64 {
		if s.down.Load() {
			return 1
		}
		return 0
	})
}

// Middleware applies the Idempotency-Key to POST requests. It belongs on
// authenticated routes, inside authentication and rate limiting: keys are
// scoped to the principal, and a 429 must never be stored.
func (s *Store) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		values, sent := r.Header[http.CanonicalHeaderKey(Header)]
		if !sent || r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		key, err := parseKey(values)
		if err != nil {
			web.WriteError(w, r, err)
			return
		}
		p, ok := auth.FromContext(r.Context())
		if !ok {
			// A wiring bug: without a principal, keys would be shared by
			// every anonymous caller and replay one's response to another.
			web.Logger(r.Context()).ErrorContext(r.Context(), "idempotency middleware on a route without a principal; key ignored")
			next.ServeHTTP(w, r)
			return
		}
		sum, spooled := bodySHA256From(r.Context())
		if !spooled {
			body, err := web.ReadBody(r)
			if err != nil {
				web.WriteError(w, r, err)
				return
			}
			sum = BodySHA256(body)
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		sc := scope{principal: p.Name, keyID: p.KeyID, method: r.Method, route: routeTemplate(r), key: key}
		r = r.WithContext(withScope(r.Context(), sc))
		s.serve(w, r, next, sc, fingerprint(r, sum))
	})
}

// serve claims the key and then runs, replays or refuses the request.
func (s *Store) serve(w http.ResponseWriter, r *http.Request, next http.Handler, sc scope, fp string) {
	ctx := r.Context()
	token := rand.Text()
	var (
		got  outcome
		resp response
	)
	err := s.detached(ctx, func(ctx context.Context) (err error) {
		got, resp, err = s.claim(ctx, sc, fp, token, s.lockTTL(r.Context()))
		return err
	})
	if err != nil {
		s.failed(ctx, err)
		next.ServeHTTP(w, r)
		return
	}
	s.recovered(ctx)
	switch got {
	case claimed:
		s.run(w, r, next, sc, token)
	case done:
		replay(w, r, resp)
	case withheld:
		web.WriteError(w, r, withheldProblem(resp))
	case running:
		web.WriteError(w, r, inProgress())
	case otherBody:
		web.WriteError(w, r, problem.New(problem.IdempotencyKeyReused,
			"this Idempotency-Key was used with a different request body"))
	case otherRoute:
		web.WriteError(w, r, problem.New(problem.IdempotencyKeyReused,
			"this Idempotency-Key was used on a different route"))
	}
}

// run runs the handler once and stores or releases its response. The release
// is deferred so that a panic (or runtime.Goexit) also frees the key; the
// panic then continues to the recovery middleware.
func (s *Store) run(w http.ResponseWriter, r *http.Request, next http.Handler, sc scope, token string) {
	rec := newRecorder(w, s.maxBody)
	stored := false
	defer func() {
		if !stored {
			s.finish(r.Context(), func(ctx context.Context) error { return s.release(ctx, sc, token) })
		}
	}()
	next.ServeHTTP(rec, r)
	resp, ok := rec.result()
	if !ok {
		web.Logger(r.Context()).InfoContext(r.Context(), "response too large to store under its Idempotency-Key; key released",
			slog.Int("limit_bytes", s.maxBody))
		return
	}
	if storable(resp) {
		stored = s.finish(r.Context(), func(ctx context.Context) error { return s.complete(ctx, sc, token, resp) })
	}
}

// finish runs a Redis write that must happen even when the request's context
// was cancelled (client gone, deadline passed) and reports whether it worked.
func (s *Store) finish(ctx context.Context, write func(context.Context) error) bool {
	if err := s.detached(ctx, write); err != nil {
		s.failed(ctx, err)
		return false
	}
	return true
}

// detached runs a Redis call with a bounded context that outlives the
// client's hang-up, like the Starter's start: a request whose body arrived
// whole is claimed, run and recorded even if the client left right after
// sending it, so its retry finds the outcome instead of a half-done state.
func (s *Store) detached(ctx context.Context, call func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), redisTimeout)
	defer cancel()
	return call(ctx)
}

// failed logs the first Redis failure of an outage.
func (s *Store) failed(ctx context.Context, err error) {
	if s.down.CompareAndSwap(false, true) {
		s.log.WarnContext(ctx, "idempotency store unreachable; serving requests without idempotency records",
			slog.String("error", err.Error()), slog.String("request_id", web.RequestID(ctx)))
	}
}

// recovered logs the end of an outage.
func (s *Store) recovered(ctx context.Context) {
	if s.down.CompareAndSwap(true, false) {
		s.log.InfoContext(ctx, "idempotency store reachable again")
	}
}

// lockTTL is how long a claim may stay "in progress": as long as the request
// may run, and no longer, so a crash frees the key soon.
func (s *Store) lockTTL(ctx context.Context) time.Duration {
	deadline, ok := ctx.Deadline()
	if !ok {
		return s.ttl
	}
	return min(max(time.Until(deadline)+lockGrace, time.Second), s.ttl)
}

// replay answers the stored response. Headers set upstream for this request
// (X-Request-Id, X-Trace-Id, RateLimit) stay as they are, and a stored
// problem document gets this request's request_id and trace_id too.
func replay(w http.ResponseWriter, r *http.Request, resp response) {
	h := w.Header()
	for name, vs := range resp.Header {
		h[http.CanonicalHeaderKey(name)] = vs
	}
	body := resp.Body
	if mediaType(h.Get("Content-Type")) == problemType {
		body = restamp(body, map[string]string{
			"request_id": web.RequestID(r.Context()),
			"trace_id":   web.TraceID(r.Context()),
		})
	}
	h.Set("Idempotent-Replayed", "true")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(resp.Status)
	_, _ = w.Write(body)
}

// withheldProblem answers a retry of a request whose response carried a
// secret: the secret was shown once and is kept nowhere, so the retry is
// told what was created instead of getting it again.
func withheldProblem(resp response) error {
	detail := "the request with this Idempotency-Key succeeded; its response held a secret, which is shown only once and is not kept for replays"
	if loc := resp.Header.Get("Location"); loc != "" {
		detail += "; it created " + loc + " (revoke it if the secret was lost)"
	}
	return problem.New(problem.Conflict, detail+". Send a new Idempotency-Key to create another.")
}

func inProgress() error {
	e := problem.New(problem.IdempotencyRequestInProgress,
		"a request with this Idempotency-Key is still running; retry to get its response")
	e.Header = http.Header{"Retry-After": []string{"1"}}
	return e
}

// routeTemplate is the matched mux route's template, so that keys are scoped
// to the route and not to the ids in its path.
func routeTemplate(r *http.Request) string {
	if rt := mux.CurrentRoute(r); rt != nil {
		if t, err := rt.GetPathTemplate(); err == nil {
			return t
		}
	}
	return r.URL.Path
}
