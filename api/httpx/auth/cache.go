package auth

import (
	"container/list"
	"time"
)

// lru is a bounded map that evicts its least recently used entry, one at a
// time, when full; entries also expire. It is not safe for concurrent use.
type lru[V any] struct {
	max   int
	order *list.List // front: most recently used
	items map[string]*list.Element
}

type lruEntry[V any] struct {
	key     string
	val     V
	expires time.Time
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{max: max, order: list.New(), items: make(map[string]*list.Element)}
}

// get returns the value of key unless it is absent or expired at now.
func (c *lru[V]) get(key string, now time.Time) (V, bool) {
	var zero V
	el, ok := c.items[key]
	if !ok {
		return zero, false
	}
	e := el.Value.(*lruEntry[V])
	if !now.Before(e.expires) {
		c.remove(el)
		return zero, false
	}
	c.order.MoveToFront(el)
	return e.val, true
}

// put stores val under key until expires, evicting the least recently used
// entry when the cache is full.
func (c *lru[V]) put(key string, val V, expires time.Time) {
	if el, ok := c.items[key]; ok {
		e := el.Value.(*lruEntry[V])
		e.val, e.expires = val, expires
		c.order.MoveToFront(el)
		return
	}
	if c.order.Len() >= c.max {
		c.remove(c.order.Back())
	}
	c.items[key] = c.order.PushFront(&lruEntry[V]{key: key, val: val, expires: expires})
}

// removeIf drops every entry whose value matches.
func (c *lru[V]) removeIf(match func(V) bool) {
	for el := c.order.Front(); el != nil; {
		next := el.Next()
		if match(el.Value.(*lruEntry[V]).val) {
			c.remove(el)
		}
		el = next
	}
}

func (c *lru[V]) remove(el *list.Element) {
	c.order.Remove(el)
	delete(c.items, el.Value.(*lruEntry[V]).key)
}
