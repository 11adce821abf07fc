package store

// Identity federation (migrations/0023_identity_federation.sql): an
// organisation's OIDC identity providers and the identity pools that let
// their tokens act as a service account in a cluster. REST manages them;
// internal/federation verifies tokens against them.

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// IdentityProvider is an external OIDC issuer an organisation trusts.
type IdentityProvider struct {
	ID, OrgID, Name, Issuer, JWKSURL, Audience string
	CreatedAt                                  time.Time
}

// IdentityPool admits the tokens of a provider whose claims pass Filter
// (every claim named must hold one of its values, or for a list claim
// contain one) and FilterExpression (internal/federation's expression
// language), each when set, as ServiceAccountID in ClusterID.
type IdentityPool struct {
	ID, OrgID, ProviderID, Name, ClusterID, ServiceAccountID string
	Filter                                                   map[string][]string
	FilterExpression                                         string
	CreatedAt                                                time.Time
}

// The filter column holds the claim filter as a JSON object of claim name
// to values; a pool with an expression stores the object
// {"expression": "<text>", "claims": {<claim filter>}} instead, which no
// claim filter can be mistaken for (their values are arrays, never a
// string). Kept in the one column so that no migration is needed.
type storedFilter struct {
	Expression string              `json:"expression"`
	Claims     map[string][]string `json:"claims,omitempty"`
}

func encodeFilter(p IdentityPool) ([]byte, error) {
	if p.FilterExpression == "" {
		return json.Marshal(p.Filter)
	}
	return json.Marshal(storedFilter{Expression: p.FilterExpression, Claims: p.Filter})
}

func decodeFilter(b []byte, p *IdentityPool) error {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return err
	}
	if e, ok := probe["expression"]; ok && len(e) > 0 && e[0] == '"' {
		var sf storedFilter
		if err := json.Unmarshal(b, &sf); err != nil {
			return err
		}
		p.Filter, p.FilterExpression = sf.Claims, sf.Expression
		return nil
	}
	return json.Unmarshal(b, &p.Filter)
}

// Bounds of what an organisation registers.
const (
	MaxIdentityProviders = 20
	MaxIdentityPools     = 100
)

// CreateIdentityProvider registers a provider (fields validated by the
// caller).
func (s *Store) CreateIdentityProvider(ctx context.Context, p IdentityProvider) (IdentityProvider, error) {
	p.ID = NewID("idp")
	err := s.pool.QueryRow(ctx, `
		INSERT INTO identity_providers (id, org_id, name, issuer, jwks_url, audience)
		SELECT $1, $2, $3, $4, $5, $6
		WHERE (SELECT count(*) FROM identity_providers WHERE org_id = $2) < $7
		RETURNING created_at`, p.ID, p.OrgID, p.Name, p.Issuer, p.JWKSURL, p.Audience, MaxIdentityProviders).Scan(&p.CreatedAt)
	switch {
	case isUniqueViolation(err):
		return p, fmt.Errorf("%w: identity provider %q", ErrExists, p.Name)
	case isFKViolation(err):
		return p, fmt.Errorf("store: create identity provider: %w", ErrNotFound)
	case err == pgx.ErrNoRows:
		return p, fmt.Errorf("%w: the organisation has %d identity providers, the most it may", ErrInvalid, MaxIdentityProviders)
	case err != nil:
		return p, fmt.Errorf("store: create identity provider: %w", err)
	}
	return p, nil
}

const providerCols = `id, org_id, name, issuer, jwks_url, audience, created_at`

func scanProvider(r pgx.CollectableRow) (IdentityProvider, error) {
	var p IdentityProvider
	return p, r.Scan(&p.ID, &p.OrgID, &p.Name, &p.Issuer, &p.JWKSURL, &p.Audience, &p.CreatedAt)
}

// IdentityProviders lists orgID's providers by id, a page at a time.
func (s *Store) IdentityProviders(ctx context.Context, orgID string, p Page) ([]IdentityProvider, string, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+providerCols+` FROM identity_providers
		WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3`, orgID, p.After, p.limit()+1)
	out, err := pgx.CollectRows(rows, scanProvider)
	if err != nil {
		return nil, "", fmt.Errorf("store: identity providers: %w", err)
	}
	out, next := page(out, p.limit(), func(x IdentityProvider) string { return x.ID })
	return out, next, nil
}

// DeleteIdentityProvider deletes one of orgID's providers and its pools.
func (s *Store) DeleteIdentityProvider(ctx context.Context, orgID, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM identity_providers WHERE org_id = $1 AND id = $2`, orgID, id)
	if err != nil {
		return fmt.Errorf("store: delete identity provider: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// CreateIdentityPool creates a pool; its provider, cluster and service
// account must be orgID's.
func (s *Store) CreateIdentityPool(ctx context.Context, p IdentityPool) (IdentityPool, error) {
	p.ID = NewID("pool")
	filter, err := encodeFilter(p)
	if err != nil {
		return p, err
	}
	err = s.pool.QueryRow(ctx, `
		INSERT INTO identity_pools (id, org_id, provider_id, name, cluster_id, service_account_id, filter)
		SELECT $1, $2, $3, $4, $5, $6, $7
		WHERE EXISTS (SELECT 1 FROM identity_providers WHERE id = $3 AND org_id = $2)
		  AND EXISTS (SELECT 1 FROM virtual_clusters WHERE id = $5 AND org_id = $2)
		  AND EXISTS (SELECT 1 FROM service_accounts WHERE id = $6 AND org_id = $2)
		  AND (SELECT count(*) FROM identity_pools WHERE org_id = $2) < $8
		RETURNING created_at`, p.ID, p.OrgID, p.ProviderID, p.Name, p.ClusterID, p.ServiceAccountID, filter, MaxIdentityPools).Scan(&p.CreatedAt)
	switch {
	case isUniqueViolation(err):
		return p, fmt.Errorf("%w: identity pool %q", ErrExists, p.Name)
	case err == pgx.ErrNoRows:
		return p, fmt.Errorf("%w: the provider, cluster or service account is not the organisation's, or it has %d pools, the most it may", ErrInvalid, MaxIdentityPools)
	case err != nil:
		return p, fmt.Errorf("store: create identity pool: %w", err)
	}
	return p, nil
}

const poolCols = `id, org_id, provider_id, name, cluster_id, service_account_id, filter, created_at`

func scanPool(r pgx.CollectableRow) (IdentityPool, error) {
	var p IdentityPool
	var filter []byte
	if err := r.Scan(&p.ID, &p.OrgID, &p.ProviderID, &p.Name, &p.ClusterID, &p.ServiceAccountID, &filter, &p.CreatedAt); err != nil {
		return p, err
	}
	return p, decodeFilter(filter, &p)
}

// IdentityPools lists orgID's pools by id, a page at a time.
func (s *Store) IdentityPools(ctx context.Context, orgID string, p Page) ([]IdentityPool, string, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+poolCols+` FROM identity_pools
		WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3`, orgID, p.After, p.limit()+1)
	out, err := pgx.CollectRows(rows, scanPool)
	if err != nil {
		return nil, "", fmt.Errorf("store: identity pools: %w", err)
	}
	out, next := page(out, p.limit(), func(x IdentityPool) string { return x.ID })
	return out, next, nil
}

// DeleteIdentityPool deletes one of orgID's pools.
func (s *Store) DeleteIdentityPool(ctx context.Context, orgID, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM identity_pools WHERE org_id = $1 AND id = $2`, orgID, id)
	if err != nil {
		return fmt.Errorf("store: delete identity pool: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// IdentityPoolWithProvider returns pool id (of any organisation) and its
// provider, for verifying a token that names it.
func (s *Store) IdentityPoolWithProvider(ctx context.Context, id string) (IdentityPool, IdentityProvider, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+poolCols+` FROM identity_pools WHERE id = $1`, id)
	pool, err := pgx.CollectExactlyOneRow(rows, scanPool)
	if err != nil {
		return pool, IdentityProvider{}, fmt.Errorf("store: identity pool: %w", noRows(err))
	}
	rows, _ = s.pool.Query(ctx, `SELECT `+providerCols+` FROM identity_providers WHERE id = $1`, pool.ProviderID)
	prov, err := pgx.CollectExactlyOneRow(rows, scanProvider)
	if err != nil {
		return pool, prov, fmt.Errorf("store: identity provider: %w", noRows(err))
	}
	return pool, prov, nil
}

// IdentityProvider returns one of orgID's providers.
func (s *Store) IdentityProvider(ctx context.Context, orgID, id string) (IdentityProvider, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+providerCols+` FROM identity_providers WHERE org_id = $1 AND id = $2`, orgID, id)
	p, err := pgx.CollectExactlyOneRow(rows, scanProvider)
	if err != nil {
		return p, fmt.Errorf("store: identity provider: %w", noRows(err))
	}
	return p, nil
}

// IdentityPool returns one of orgID's pools.
func (s *Store) IdentityPool(ctx context.Context, orgID, id string) (IdentityPool, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+poolCols+` FROM identity_pools WHERE org_id = $1 AND id = $2`, orgID, id)
	p, err := pgx.CollectExactlyOneRow(rows, scanPool)
	if err != nil {
		return p, fmt.Errorf("store: identity pool: %w", noRows(err))
	}
	return p, nil
}
