package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// SigningKey is a JWT signing key (see control-plane/identity).
type SigningKey struct {
	KID            string
	Alg            string
	PrivateKey     []byte // PKCS#8 DER, as identity sealed it (see SecretColumn)
	CreatedAt      time.Time
	RetiredAt      *time.Time // no longer signs after this
	PublishedUntil *time.Time // leaves the JWKS after this
}

// SigningKeys returns the keys still published, newest first. The first
// one not retired is the one that signs.
func (s *Store) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+signingKeyCols+` FROM signing_keys
		WHERE published_until IS NULL OR published_until > now() ORDER BY created_at DESC, kid`)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SigningKey, error) { return scanSigningKey(r) })
	if err != nil {
		return nil, fmt.Errorf("store: signing keys: %w", err)
	}
	return out, nil
}

const signingKeyCols = `kid, alg, private_key, created_at, retired_at, published_until`

func scanSigningKey(r pgx.Row) (SigningKey, error) {
	var k SigningKey
	return k, r.Scan(&k.KID, &k.Alg, &k.PrivateKey, &k.CreatedAt, &k.RetiredAt, &k.PublishedUntil)
}

// SigningKey returns key kid, published or not (ErrNotFound once deleted).
func (s *Store) SigningKey(ctx context.Context, kid string) (SigningKey, error) {
	k, err := scanSigningKey(s.pool.QueryRow(ctx, `SELECT `+signingKeyCols+` FROM signing_keys WHERE kid = $1`, kid))
	if err != nil {
		return k, fmt.Errorf("store: signing key: %w", noRows(err))
	}
	return k, nil
}

// DeleteSigningKeys deletes the keys that left the JWKS more than after
// ago, and returns how many it deleted.
func (s *Store) DeleteSigningKeys(ctx context.Context, after time.Duration) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM signing_keys WHERE published_until < now() - make_interval(secs => $1)`, after.Seconds())
	if err != nil {
		return 0, fmt.Errorf("store: delete signing keys: %w", err)
	}
	return tag.RowsAffected(), nil
}

// AddSigningKey stores a new signing key and retires the ones that signed
// before it: they stop signing now and stay published for keep (the
// lifetime of the last token they signed, plus slack). It does nothing if
// a signing key younger than replaceOlderThan exists (0: always add), so
// control planes starting or rotating together agree on one key.
func (s *Store) AddSigningKey(ctx context.Context, k SigningKey, keep, replaceOlderThan time.Duration) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Serialise rotations across control planes.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(0x65646479_6b657973)); err != nil {
			return err
		}
		if replaceOlderThan > 0 {
			var young bool
			if err := tx.QueryRow(ctx, `
				SELECT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL
					AND created_at > now() - make_interval(secs => $1))`,
				min(replaceOlderThan, 100*365*24*time.Hour).Seconds()).Scan(&young); err != nil {
				return err
			}
			if young {
				return nil
			}
		}
		if _, err := tx.Exec(ctx, `
			UPDATE signing_keys SET retired_at = now(), published_until = now() + make_interval(secs => $1)
			WHERE retired_at IS NULL`, keep.Seconds()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO signing_keys (kid, alg, private_key) VALUES ($1, $2, $3)`, k.KID, k.Alg, k.PrivateKey)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: add signing key: %w", err)
	}
	return nil
}

// Replay is a stored response to a POST with an Idempotency-Key.
type Replay struct {
	RequestHash []byte
	Status      int // 0: the first request is still running
	Headers     map[string]string
	Body        []byte
}

// BeginIdempotent claims (scope, key) for a request hashing to hash. If
// the key was claimed before, it returns that claim instead (ok false).
func (s *Store) BeginIdempotent(ctx context.Context, scope, key string, hash []byte) (prior Replay, ok bool, err error) {
	tag, err := s.pool.Exec(ctx, `
		INSERT INTO idempotency_keys (scope, key, request_hash) VALUES ($1, $2, $3)
		ON CONFLICT (scope, key) DO NOTHING`, scope, key, hash)
	if err != nil {
		return prior, false, fmt.Errorf("store: idempotency: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return prior, true, nil
	}
	var hdr []byte
	err = s.pool.QueryRow(ctx, `SELECT request_hash, status, headers, body FROM idempotency_keys WHERE scope = $1 AND key = $2`,
		scope, key).Scan(&prior.RequestHash, &prior.Status, &hdr, &prior.Body)
	if err != nil {
		return prior, false, fmt.Errorf("store: idempotency: %w", noRows(err))
	}
	if err := json.Unmarshal(hdr, &prior.Headers); err != nil {
		return prior, false, fmt.Errorf("store: idempotency: %w", err)
	}
	return prior, false, nil
}

// FinishIdempotent records the response of a claimed request.
func (s *Store) FinishIdempotent(ctx context.Context, scope, key string, r Replay) error {
	hdr, _ := json.Marshal(r.Headers)
	_, err := s.pool.Exec(ctx, `UPDATE idempotency_keys SET status = $3, headers = $4, body = $5 WHERE scope = $1 AND key = $2`,
		scope, key, r.Status, hdr, r.Body)
	if err != nil {
		return fmt.Errorf("store: idempotency: %w", err)
	}
	return nil
}

// AbortIdempotent releases a claim whose request failed in a way worth
// retrying (a server error).
func (s *Store) AbortIdempotent(ctx context.Context, scope, key string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2`, scope, key); err != nil {
		return fmt.Errorf("store: idempotency: %w", err)
	}
	return nil
}

// ExpireIdempotent forgets replays older than age.
func (s *Store) ExpireIdempotent(ctx context.Context, age time.Duration) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)`, age.Seconds()); err != nil {
		return fmt.Errorf("store: idempotency: %w", err)
	}
	return nil
}
