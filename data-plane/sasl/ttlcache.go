package sasl

import (
	"context"
	"sync"
	"time"
)

// defaultCacheTTL is how long KeyCache and AccountCache remember an
// answer when their TTL is zero.
const defaultCacheTTL = 5 * time.Second

// maxCached bounds a cache's entries: past it the cache starts over, so a
// storm of made-up ids cannot grow it without bound.
const maxCached = 100_000

// ttlCache remembers what load answered for an id, for ttl: the shared
// mechanics of KeyCache and AccountCache. Forget drops an answer at once
// (when Postgres announces a deletion), so ttl only bounds how long a lost
// announcement goes unnoticed. Safe for concurrent use.
type ttlCache[V any] struct {
	mu      sync.Mutex
	entries map[string]cached[V]
}

type cached[V any] struct {
	v       V
	fetched time.Time
}

// get returns the remembered answer for id if it is younger than ttl (the
// default for 0), else load's, which it remembers unless load failed.
func (c *ttlCache[V]) get(ctx context.Context, id string, ttl time.Duration, load func(context.Context, string) (V, error)) (V, error) {
	if ttl <= 0 {
		ttl = defaultCacheTTL
	}
	c.mu.Lock()
	e, ok := c.entries[id]
	c.mu.Unlock()
	if ok && time.Since(e.fetched) <= ttl {
		return e.v, nil
	}
	v, err := load(ctx, id)
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if c.entries == nil || len(c.entries) > maxCached {
		c.entries = map[string]cached[V]{}
	}
	c.entries[id] = cached[V]{v: v, fetched: time.Now()}
	c.mu.Unlock()
	return v, nil
}

// Forget drops what the cache remembers about id.
func (c *ttlCache[V]) Forget(id string) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}

// ForgetAll drops every remembered answer (after notifications may have
// been lost).
func (c *ttlCache[V]) ForgetAll() {
	c.mu.Lock()
	c.entries = nil
	c.mu.Unlock()
}
