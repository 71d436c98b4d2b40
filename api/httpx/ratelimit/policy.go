package ratelimit

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/go-redis/redis_rate/v10"

	"github.com/acme/platform/api/httpx/problem"
	"github.com/acme/platform/api/httpx/web"
	"github.com/acme/platform/internal/config"
)

// policy is a named quota.
type policy struct {
	name string
	rate config.Rate
}

// limit is the GCRA limit of p. Burst equals the quota so that a fresh (or
// long idle) subject can spend its whole quota at once, which is what
// RateLimit-Policy q advertises and what r counts down from; afterwards the
// quota refills steadily at Limit per Period. A smaller burst would make q a
// promise the limiter does not keep. The price: a client that starts full can
// get up to 2×Limit requests within one Period (the bucket, then a period's
// refill); the sustained rate is Limit per Period.
func (p policy) limit() redis_rate.Limit {
	return redis_rate.Limit{Rate: p.rate.Limit, Burst: p.rate.Limit, Period: p.rate.Period}
}

// window is the policy's period in whole seconds, the draft's w.
func (p policy) window() int {
	return max(1, int(math.Ceil(p.rate.Period.Seconds())))
}

// interval is the time GCRA takes to restore one request of quota.
func (p policy) interval() time.Duration {
	return p.rate.Period / time.Duration(p.rate.Limit)
}

// decision is the answer for one request.
type decision struct {
	allowed   bool
	remaining int
	// next is the time until one more request's worth of quota is available:
	// the retry delay when the request is refused.
	next time.Duration
}

// untilNextUnit is the time until GCRA restores the next request of quota,
// given resetAfter, the time until it is completely restored: quota returns
// one unit per interval, so the next unit is the remainder.
func untilNextUnit(resetAfter, interval time.Duration) time.Duration {
	if resetAfter <= 0 {
		return 0
	}
	next := resetAfter % interval
	// redis_rate computes in float seconds; a remainder of a few nanoseconds
	// means a whole unit is still owed, not that one is about to arrive.
	if next < time.Millisecond {
		next += interval
	}
	return next
}

// seconds rounds d up to whole seconds, at least 1: the draft's t and
// Retry-After are integers, and rounding down would invite a retry that is
// refused again.
func seconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

func policyField(p policy) string {
	return `"` + p.name + `";q=` + strconv.Itoa(p.rate.Limit) + ";w=" + strconv.Itoa(p.window())
}

func rateLimitField(p policy, d decision) string {
	return `"` + p.name + `";r=` + strconv.Itoa(max(0, d.remaining)) + ";t=" + strconv.Itoa(seconds(d.next))
}

func setHeaders(h http.Header, p policy, d decision) {
	h.Set("RateLimit-Policy", policyField(p))
	h.Set("RateLimit", rateLimitField(p, d))
}

// writeLimited answers 429 rate_limited; Retry-After and the RateLimit t
// parameter carry the same number.
func writeLimited(w http.ResponseWriter, r *http.Request, p policy, d decision) {
	web.WriteError(w, r, limitedError(p, d))
}

// limitedError is the 429 rate_limited problem of d under p.
func limitedError(p policy, d decision) *problem.Error {
	d.remaining = 0
	h := http.Header{}
	setHeaders(h, p, d)
	h.Set("Retry-After", strconv.Itoa(seconds(d.next)))
	return &problem.Error{
		Code: problem.RateLimited,
		Detail: fmt.Sprintf("the %s quota of %d requests per %d s is used up; retry after %d s",
			p.name, p.rate.Limit, p.window(), seconds(d.next)),
		Header: h,
		Extra:  map[string]any{"violated-policies": []string{p.name}},
	}
}
