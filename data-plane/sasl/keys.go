package sasl

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"github.com/eddy-streams/eddy/internal/scram"
	"time"
)

// StoredKey is an API key as the control plane stores it: the secret only
// as its SHA-256 (secrets are 256 random bits, so a slow hash adds nothing).
type StoredKey struct {
	Org            string
	Cluster        string // "" for organisation-wide keys
	ServiceAccount string
	SecretHash     []byte
	SCRAM          scram.Credentials // by mechanism; nil for keys made before SCRAM
}

// ErrNoKey is what a KeyLookup returns for an unknown key.
var ErrNoKey = errors.New("sasl: no such key")

// KeyCache verifies API keys through Lookup, remembering answers (found or
// not) for TTL so a connection storm costs few queries, while a revoked
// key stops working within TTL.
type KeyCache struct {
	Lookup func(ctx context.Context, id string) (StoredKey, error)
	TTL    time.Duration // default 5s

	ttlCache[keyEntry] // Forget (the broker calls it when Postgres announces a key's deletion), ForgetAll
}

type keyEntry struct {
	key   StoredKey
	found bool
}

// VerifyKey implements KeyVerifier.
func (c *KeyCache) VerifyKey(ctx context.Context, id, secret string) (Principal, error) {
	e, err := c.entry(ctx, id)
	if err != nil {
		return Principal{}, err
	}
	sum := sha256.Sum256([]byte(secret))
	if !e.found || subtle.ConstantTimeCompare(sum[:], e.key.SecretHash) != 1 {
		// One message for unknown keys and wrong secrets: no key probing.
		return Principal{}, errBadKey
	}
	return e.principal(id), nil
}

var errBadKey = fmt.Errorf("%w: unknown API key or wrong secret", ErrAuthentication)

// SCRAMCredential implements SCRAMVerifier.
func (c *KeyCache) SCRAMCredential(ctx context.Context, id, mechanism string) (scram.Credential, Principal, bool, error) {
	e, err := c.entry(ctx, id)
	if err != nil {
		return scram.Credential{}, Principal{}, false, err
	}
	cred, ok := e.key.SCRAM[mechanism]
	if !e.found || !ok {
		return scram.Credential{}, Principal{}, false, nil
	}
	return cred, e.principal(id), true, nil
}

func (e keyEntry) principal(id string) Principal {
	return Principal{Org: e.key.Org, Cluster: e.key.Cluster, ServiceAccount: e.key.ServiceAccount, Via: id}
}

func (c *KeyCache) entry(ctx context.Context, id string) (keyEntry, error) {
	return c.get(ctx, id, c.TTL, func(ctx context.Context, id string) (keyEntry, error) {
		k, err := c.Lookup(ctx, id)
		switch {
		case errors.Is(err, ErrNoKey):
			return keyEntry{}, nil // unknown keys are remembered too
		case err != nil:
			return keyEntry{}, fmt.Errorf("sasl: look up key: %w", err)
		}
		return keyEntry{key: k, found: true}, nil
	})
}
