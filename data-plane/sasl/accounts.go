package sasl

import (
	"context"
	"fmt"
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

	ttlCache[bool] // Forget, ForgetAll
}

// AccountExists implements AccountChecker.
func (c *AccountCache) AccountExists(ctx context.Context, id string) (bool, error) {
	return c.get(ctx, id, c.TTL, func(ctx context.Context, id string) (bool, error) {
		exists, err := c.Exists(ctx, id)
		if err != nil {
			return false, fmt.Errorf("sasl: look up service account: %w", err)
		}
		return exists, nil
	})
}
