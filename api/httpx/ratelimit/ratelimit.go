// Package ratelimit enforces the API's quotas: per principal and per scope
// class (read, write) for authenticated requests, and per client IP for
// unauthenticated ones. The algorithm is GCRA in Redis (go-redis/redis_rate);
// when Redis fails, decisions fall back to an in-process token bucket so that
// a Redis outage degrades the limits instead of failing requests.
//
// A busy key does not cost a Redis round trip per request: the process
// leases a few requests of the key's quota at once and hands them out
// locally for a short window (see lease.go).
//
// Every response the limiter lets through carries the draft-10 fields
// (draft-ietf-httpapi-ratelimit-headers-10), for example
//
//	RateLimit-Policy: "write";q=300;w=60
//	RateLimit: "write";r=57;t=1
//
// where r is the number of requests that could be made right now and t the
// number of seconds until one more request's worth of quota is restored (the
// draft's "additional quota is made available"; it is not the time until the
// quota is full again). A request over quota is answered 429 rate_limited
// with Retry-After and t both set to the seconds until the next request will
// be allowed.
package ratelimit

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/acme/platform/api/httpx/auth"
	"github.com/acme/platform/internal/config"
	"github.com/acme/platform/internal/redis"
)

// Policy names, as they appear in RateLimit-Policy, RateLimit and
// violated-policies.
const (
	PolicyRead  = "read"
	PolicyWrite = "write"
	PolicyAnon  = "anon"
)

const (
	// redisTimeout bounds one Redis decision, so a slow Redis costs a request
	// at most this much before the fallback decides.
	redisTimeout = 500 * time.Millisecond
	// redisCooldown is how long Redis is skipped after a failure, so that
	// requests do not each wait out a timeout on a dead server.
	redisCooldown = 1500 * time.Millisecond
	// maxLocalBuckets bounds the fallback's memory.
	maxLocalBuckets = 10_000
)

// Policies are the quotas the limiter enforces: Read and Write per principal,
// Anon per client IP for unauthenticated requests and failed authentication.
type Policies struct {
	Read, Write, Anon config.Rate
}

// Limiter decides whether a request is within its quota and writes the
// RateLimit fields or the 429. It is safe for concurrent use.
type Limiter struct {
	gcra    gcra
	timeout time.Duration // of one Redis decision
	keys    redis.Keys
	read    policy
	write   policy
	anon    policy
	health  *breaker
	local   *local
	refused *refusals
	leases  *leases
	now     func() time.Time // of the leases and refusals
	log     *slog.Logger
	metrics *metrics
}

// New returns a limiter that keeps its state in rdb under keys. Metrics are
// registered on reg when it is not nil.
func New(rdb goredis.UniversalClient, keys redis.Keys, p Policies, log *slog.Logger, reg prometheus.Registerer) *Limiter {
	m := newMetrics(reg)
	return &Limiter{
		gcra:    redis_rate.NewLimiter(prefixedKeys{UniversalClient: rdb, keys: keys}),
		timeout: redisTimeout,
		keys:    keys,
		read:    policy{name: PolicyRead, rate: p.Read},
		write:   policy{name: PolicyWrite, rate: p.Write},
		anon:    policy{name: PolicyAnon, rate: p.Anon},
		health:  &breaker{cooldown: redisCooldown},
		local:   newLocal(maxLocalBuckets),
		refused: newRefusals(maxLocalBuckets),
		leases:  newLeases(leaseWindow, maxLeaseStates, m.leaseDropped),
		now:     time.Now,
		log:     log,
		metrics: m,
	}
}

// Principal limits authenticated routes: the principal in the context is
// charged in the request's class. A request without a principal is charged to
// its client IP under the anon policy, so a misordered chain still limits.
func (l *Limiter) Principal(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, subject := l.anon, clientIP(r)
		if pr, ok := auth.FromContext(r.Context()); ok && pr.Name != "" {
			p, subject = l.classPolicy(r), pr.Name
		}
		if l.admit(w, r, p, subject) {
			next.ServeHTTP(w, r)
		}
	})
}

// Anonymous limits public routes per client IP under the anon policy.
func (l *Limiter) Anonymous(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l.admit(w, r, l.anon, clientIP(r)) {
			next.ServeHTTP(w, r)
		}
	})
}

// ChargeFailedAuth charges a failed authentication to the client IP's anon
// quota, so that guessing keys is limited, and never to the principal the
// request claimed to be. Over quota it writes the 429 and returns false;
// otherwise it sets the RateLimit fields and returns true, and the caller
// answers 401 as usual.
func (l *Limiter) ChargeFailedAuth(w http.ResponseWriter, r *http.Request) bool {
	return l.admit(w, r, l.anon, clientIP(r))
}

// Throttled answers, without asking Redis, whether this process refused the
// client IP under the anon policy moments ago and the refusal still holds:
// then it returns the 429 problem. The authenticator asks it before it
// looks a key up, so that guessing keys past the quota costs no query.
// Each process learns of a refusal by making one itself, so an IP over
// quota costs at most one lookup per process per refusal period.
func (l *Limiter) Throttled(r *http.Request) error {
	now := l.now()
	until, ok := l.refused.until(clientIP(r), now)
	if !ok {
		return nil
	}
	l.metrics.decided(l.anon.name, false)
	return limitedError(l.anon, decision{next: until.Sub(now)})
}

func (l *Limiter) classPolicy(r *http.Request) policy {
	if isRead(r) {
		return l.read
	}
	return l.write
}

// admit charges one request to subject under p and answers whether it may
// proceed; when it may not, the 429 has been written.
func (l *Limiter) admit(w http.ResponseWriter, r *http.Request, p policy, subject string) bool {
	d := l.decide(r.Context(), p, subject)
	l.metrics.decided(p.name, d.allowed)
	if !d.allowed {
		if p.name == PolicyAnon {
			l.refused.note(subject, l.now().Add(d.next))
		}
		writeLimited(w, r, p, d)
		return false
	}
	setHeaders(w.Header(), p, d)
	return true
}

// decide asks Redis unless it is cooling down after a failure, and falls back
// to the in-process buckets when Redis cannot answer. While Redis is up, a
// busy key is decided from its lease; a probe of a failed Redis always asks
// Redis itself.
func (l *Limiter) decide(ctx context.Context, p policy, subject string) decision {
	key := l.keys.Key("ratelimit", p.name, subject)
	if ask, probe := l.health.try(time.Now()); ask {
		d, asked, err := l.fromRedis(ctx, key, p, !probe)
		if err == nil {
			if asked {
				l.redisOK(ctx)
			}
			return d
		}
		if !errors.Is(err, errLeaseLost) {
			l.redisFailed(ctx, err)
		}
	}
	return l.local.allow(key, p.rate, time.Now())
}

// fromRedis decides from Redis, through the key's lease when lease is set
// and p is large enough to lease; asked reports whether Redis was asked.
func (l *Limiter) fromRedis(ctx context.Context, key string, p policy, lease bool) (d decision, asked bool, err error) {
	if limit := leaseCap(p); lease && limit > 1 && l.leases.window > 0 {
		return l.leased(ctx, key, p, limit)
	}
	d, err = l.single(ctx, key, p)
	return d, true, err
}

func (l *Limiter) redisOK(ctx context.Context) {
	if l.health.succeeded() {
		l.metrics.degraded.Set(0)
		l.log.InfoContext(ctx, "rate limiter: redis is back; using redis again")
	}
}

// redisFailed records a failure. A request whose own context ended is no
// evidence that Redis is down, so it only gives up its probe.
func (l *Limiter) redisFailed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		l.health.abandoned()
		return
	}
	l.leases.invalidate()
	if l.health.failed(time.Now()) {
		l.metrics.fallbacks.Inc()
		l.metrics.degraded.Set(1)
		l.log.WarnContext(ctx, "rate limiter: redis unavailable; using in-process limits", "error", err)
	}
}
