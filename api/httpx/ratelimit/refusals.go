package ratelimit

import (
	"sync"
	"time"
)

// refusals remembers, per subject, until when this process's last refusal
// under the anon policy holds, so that a refused client can be turned away
// again without a Redis round trip or a key lookup. Memory is bounded:
// expired entries go first, then arbitrary ones, whose subjects merely cost
// one more decision.
type refusals struct {
	max int

	mu   sync.Mutex
	ends map[string]time.Time
}

func newRefusals(max int) *refusals {
	return &refusals{max: max, ends: make(map[string]time.Time)}
}

// note records that subject is refused until t.
func (c *refusals) note(subject string, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.ends[subject]; !ok && len(c.ends) >= c.max {
		c.evict(t)
	}
	c.ends[subject] = t
}

// until reports whether subject is still refused at now, and until when.
func (c *refusals) until(subject string, now time.Time) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.ends[subject]
	if !ok {
		return time.Time{}, false
	}
	if !now.Before(t) {
		delete(c.ends, subject)
		return time.Time{}, false
	}
	return t, true
}

// evict makes room down to 90% of max.
func (c *refusals) evict(now time.Time) {
	target := c.max * 9 / 10
	for k, t := range c.ends {
		if !now.Before(t) {
			delete(c.ends, k)
		}
	}
	for k := range c.ends {
		if len(c.ends) <= target {
			return
		}
		delete(c.ends, k)
	}
}
