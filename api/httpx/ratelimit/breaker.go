package ratelimit

import (
	"sync"
	"time"
)

// breaker remembers whether Redis is failing. After a failure Redis is
// skipped for the cool-down; then one request at a time probes it while the
// others keep using the fallback, so a dead Redis never makes every request
// wait out a timeout.
type breaker struct {
	cooldown time.Duration

	mu      sync.Mutex
	down    bool
	retryAt time.Time
	probing bool
}

// tryRedis reports whether this request should ask Redis.
func (b *breaker) tryRedis(now time.Time) bool {
	ask, _ := b.try(now)
	return ask
}

// try reports whether this request should ask Redis, and whether it is the
// one probe of a Redis that failed: a probe must ask Redis itself, not use a
// lease.
func (b *breaker) try(now time.Time) (ask, probe bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.down {
		return true, false
	}
	if b.probing || now.Before(b.retryAt) {
		return false, false
	}
	b.probing = true
	return true, true
}

// succeeded records an answer from Redis and reports whether Redis was down
// until now.
func (b *breaker) succeeded() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	recovered := b.down
	b.down, b.probing = false, false
	return recovered
}

// failed records a Redis failure and reports whether Redis was up until now.
func (b *breaker) failed(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switched := !b.down
	b.down, b.probing = true, false
	b.retryAt = now.Add(b.cooldown)
	return switched
}

// abandoned gives up a probe whose outcome says nothing about Redis.
func (b *breaker) abandoned() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
}
