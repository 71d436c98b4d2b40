package ratelimit

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/acme/platform/internal/config"
)

// local is the in-process fallback: a token bucket per key with the same
// quota as the Redis policy. Each process enforces the quota on its own, so
// while Redis is down a client may get up to one quota per replica.
type local struct {
	max int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

func newLocal(max int) *local {
	return &local{max: max, buckets: make(map[string]*rate.Limiter)}
}

// allow charges one request to key.
func (c *local) allow(key string, q config.Rate, now time.Time) decision {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.bucket(key, q, now)
	if !b.AllowN(now, 1) {
		return decision{next: untilNextToken(b.TokensAt(now), b.Limit())}
	}
	tokens := b.TokensAt(now)
	return decision{allowed: true, remaining: int(tokens), next: untilNextToken(tokens, b.Limit())}
}

func (c *local) bucket(key string, q config.Rate, now time.Time) *rate.Limiter {
	if b, ok := c.buckets[key]; ok {
		return b
	}
	if len(c.buckets) >= c.max {
		c.evict(now)
	}
	b := rate.NewLimiter(rate.Limit(float64(q.Limit)/q.Period.Seconds()), q.Limit)
	c.buckets[key] = b
	return b
}

// evict makes room down to 90% of max, so that its cost is spread over many
// inserts. Full buckets go first: forgetting them loses nothing, because a
// new bucket starts full. If that is not enough, arbitrary buckets go too;
// their subjects get a fresh quota, which is the price of bounded memory
// while an attacker sprays addresses.
func (c *local) evict(now time.Time) {
	target := c.max * 9 / 10
	for k, b := range c.buckets {
		if b.TokensAt(now) >= float64(b.Burst()) {
			delete(c.buckets, k)
		}
	}
	for k := range c.buckets {
		if len(c.buckets) <= target {
			return
		}
		delete(c.buckets, k)
	}
}

// untilNextToken is the time until the bucket holds one more whole token.
func untilNextToken(tokens float64, r rate.Limit) time.Duration {
	missing := math.Floor(tokens) + 1 - tokens
	return time.Duration(missing / float64(r) * float64(time.Second))
}
