package sasl

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// AccountChecker reports whether a service account still exists. A token
// is verified offline and stays valid until it expires; the account it
// names may have been deleted since it was issued, and Authenticator asks
// this before accepting it.
type AccountChecker interface {
	AccountExists(ctx context.Context, id string) (bool, error)
}

// AccountCache is an AccountChecker that remembers answers for TTL, so a
// login storm costs few queries; Forget drops an answer at once when the
// account's deletion is announced, so TTL only bounds how long a lost
// announcement goes unnoticed.
type AccountCache struct {
	Exists func(ctx context.Context, id string) (bool, error)
	TTL    time.Duration // default 5s

	mu      sync.Mutex
	entries map[string]accountEntry
}

type accountEntry struct {
	exists  bool
	fetched time.Time
}

// AccountExists implements AccountChecker.
func (c *AccountCache) AccountExists(ctx context.Context, id string) (bool, error) {
	ttl := c.TTL
	if ttl <= 0 {
		ttl = 5 * time.Second
	}
	c.mu.Lock()
	e, ok := c.entries[id]
	c.mu.Unlock()
	if ok && time.Since(e.fetched) <= ttl {
		return e.exists, nil
	}
	exists, err := c.Exists(ctx, id)
	if err != nil {
		return false, fmt.Errorf("sasl: look up service account: %w", err)
	}
	c.mu.Lock()
	if c.entries == nil || len(c.entries) > 100_000 {
		c.entries = map[string]accountEntry{}
	}
	c.entries[id] = accountEntry{exists: exists, fetched: time.Now()}
	c.mu.Unlock()
	return exists, nil
}

// Forget drops the answer for account id.
func (c *AccountCache) Forget(id string) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}

// ForgetAll drops every answer.
func (c *AccountCache) ForgetAll() {
	c.mu.Lock()
	c.entries = nil
	c.mu.Unlock()
}
