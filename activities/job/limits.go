package job

import (
	"context"
	"errors"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/acme/platform/internal/redis"
)

// DeliveryLimits bound one principal's webhook deliveries across every
// worker: at most MaxInFlight at once, and at most Rate begun per Period.
// Zero disables a limit. A slot is held at most Lease, after which a crashed
// worker's slot comes back by itself.
type DeliveryLimits struct {
	MaxInFlight int
	Rate        int
	Period      time.Duration
	Lease       time.Duration
}

// Limiter enforces DeliveryLimits in Redis, shared by every worker replica.
// With Redis down it enforces them per process instead (so up to one set of
// limits per replica), and never fails a delivery because Redis is down.
type Limiter struct {
	rdb    goredis.UniversalClient
	keys   redis.Keys
	limits DeliveryLimits
	local  *localLimits

	mu        sync.Mutex
	skipUntil time.Time // Redis failed: use the local limits until then
}

// redisCooldown is how long the limiter keeps to its local limits after
// Redis failed, so that an outage costs one timeout, not one per delivery.
const redisCooldown = 5 * time.Second

// NewLimiter returns a limiter of limits over rdb, its keys under keys.
func NewLimiter(rdb goredis.UniversalClient, keys redis.Keys, limits DeliveryLimits) *Limiter {
	if limits.Lease <= 0 {
		limits.Lease = 10 * time.Minute
	}
	return &Limiter{rdb: rdb, keys: keys, limits: limits, local: newLocalLimits(limits)}
}

// admitScript takes an in-flight slot (a sorted-set member scored by its
// expiry) and a rate token (a member scored by its time, kept for one
// period) in one step, or neither. It returns {1, 0} when admitted, else
// {0, wait in ms}, the wait 0 when only a slot's release can help.
// Redis's own clock serves every replica.
var admitScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cap, lease, limit, period = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if cap > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  if redis.call('ZCARD', KEYS[1]) >= cap then return {0, 0} end
end
if limit > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - period)
  if redis.call('ZCARD', KEYS[2]) >= limit then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {0, math.max(1, tonumber(oldest[2]) + period - now)}
  end
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[2], period)
end
if cap > 0 then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], lease)
end
return {1, 0}
`)

// Acquire takes a delivery slot of principal for the delivery named token
// (unique per try). It returns the slot's release, or, when the principal is
// over a limit, how long to wait before trying again (0 for release).
func (l *Limiter) Acquire(ctx context.Context, principal, token string) (release func(), wait time.Duration, throttled bool) {
	if l.useRedis() {
		release, wait, throttled, err := l.acquireRedis(ctx, principal, token)
		if err == nil {
			return release, wait, throttled
		}
		if ctx.Err() != nil { // our own cancellation says nothing of Redis
			return func() {}, 0, true
		}
		l.redisFailed()
	}
	return l.local.acquire(principal, time.Now())
}

// redisKeys are the in-flight and rate keys of principal. The hash tag
// keeps both in one slot of a Redis Cluster, as admitScript needs; principal
// names hold no braces.
func (l *Limiter) redisKeys(principal string) (inFlight, rateKey string) {
	tag := redis.Tag(principal)
	return l.keys.Key("webhook", "in_flight", tag), l.keys.Key("webhook", "rate", tag)
}

func (l *Limiter) acquireRedis(ctx context.Context, principal, token string) (func(), time.Duration, bool, error) {
	inFlight, rateKey := l.redisKeys(principal)
	res, err := admitScript.Run(ctx, l.rdb, []string{inFlight, rateKey}, token, l.limits.MaxInFlight,
		l.limits.Lease.Milliseconds(), l.limits.Rate, l.limits.Period.Milliseconds()).Int64Slice()
	if err != nil {
		return nil, 0, false, err
	}
	if len(res) != 2 {
		return nil, 0, false, errors.New("webhook limiter: unexpected script result")
	}
	if res[0] == 0 {
		return nil, time.Duration(res[1]) * time.Millisecond, true, nil
	}
	release := func() {
		if l.limits.MaxInFlight <= 0 {
			return
		}
		// A release that fails leaves the slot to expire with its lease.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		l.rdb.ZRem(ctx, inFlight, token)
	}
	return release, 0, false, nil
}

func (l *Limiter) useRedis() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rdb != nil && time.Now().After(l.skipUntil)
}

func (l *Limiter) redisFailed() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.skipUntil = time.Now().Add(redisCooldown)
}

// localLimits are the per-process fallback: a counter and a token bucket
// per principal. Principals are API key owners, a bounded set.
type localLimits struct {
	limits DeliveryLimits

	mu         sync.Mutex
	principals map[string]*localPrincipal
}

type localPrincipal struct {
	inFlight int
	bucket   *rate.Limiter
}

func newLocalLimits(limits DeliveryLimits) *localLimits {
	return &localLimits{limits: limits, principals: make(map[string]*localPrincipal)}
}

func (c *localLimits) acquire(principal string, now time.Time) (func(), time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.principals[principal]
	if !ok {
		p = &localPrincipal{}
		if c.limits.Rate > 0 && c.limits.Period > 0 {
			p.bucket = rate.NewLimiter(rate.Limit(float64(c.limits.Rate)/c.limits.Period.Seconds()), c.limits.Rate)
		}
		c.principals[principal] = p
	}
	if c.limits.MaxInFlight > 0 && p.inFlight >= c.limits.MaxInFlight {
		return nil, 0, true
	}
	if p.bucket != nil {
		r := p.bucket.ReserveN(now, 1)
		if d := r.DelayFrom(now); d > 0 {
			r.CancelAt(now)
			return nil, d, true
		}
	}
	p.inFlight++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			p.inFlight--
		})
	}, 0, false
}
