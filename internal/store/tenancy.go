package store

// Tenancy: organisations, virtual clusters, service accounts, API keys and
// role bindings. Every method that reads or changes something inside an
// organisation takes the organisation's id and filters by it in SQL, so a
// caller cannot reach another tenant's rows by guessing ids: those look
// exactly like rows that do not exist (ErrNotFound).

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Org is an organisation.
type Org struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// ServiceAccount is a non-human principal of an organisation.
type ServiceAccount struct {
	ID          string
	OrgID       string
	Name        string
	Description string
	OrgAdmin    bool
	CreatedAt   time.Time
}

// APIKey is a credential of a service account. ClusterID "" means the key
// is valid for the whole organisation.
type APIKey struct {
	ID               string
	OrgID            string
	ServiceAccountID string
	ClusterID        string
	Description      string
	SecretHash       []byte
	SCRAM            []byte // SCRAM credentials (internal/scram JSON); nil for old keys
	CreatedAt        time.Time
	OrgAdmin         bool // of its service account
}

// CreateOrg creates an organisation with an org-admin service account
// named "admin" and one API key for it whose secret hashes to keyHash
// (scram: the secret's SCRAM credentials).
func (s *Store) CreateOrg(ctx context.Context, name string, keyHash, scram []byte) (Org, ServiceAccount, APIKey, error) {
	o := Org{ID: NewID("org"), Name: name}
	sa := ServiceAccount{ID: NewID("sa"), OrgID: o.ID, Name: "admin", Description: "created with the organisation", OrgAdmin: true}
	k := APIKey{ID: NewID("key"), OrgID: o.ID, ServiceAccountID: sa.ID, Description: "bootstrap key of the admin service account", SecretHash: keyHash, SCRAM: scram}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO organizations (id, name) VALUES ($1, $2) RETURNING created_at`, o.ID, o.Name).Scan(&o.CreatedAt); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `
			INSERT INTO service_accounts (id, org_id, name, description, org_admin) VALUES ($1, $2, $3, $4, true)
			RETURNING created_at`, sa.ID, sa.OrgID, sa.Name, sa.Description).Scan(&sa.CreatedAt); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `
			INSERT INTO api_keys (id, org_id, service_account_id, secret_hash, scram, description) VALUES ($1, $2, $3, $4, $5, $6)
			RETURNING created_at`, k.ID, k.OrgID, k.ServiceAccountID, k.SecretHash, k.SCRAM, k.Description).Scan(&k.CreatedAt)
	})
	if isUniqueViolation(err) {
		return Org{}, ServiceAccount{}, APIKey{}, fmt.Errorf("%w: organisation %q", ErrExists, name)
	}
	if err != nil {
		return Org{}, ServiceAccount{}, APIKey{}, fmt.Errorf("store: create org: %w", err)
	}
	return o, sa, k, nil
}

// Org returns one organisation.
func (s *Store) Org(ctx context.Context, id string) (Org, error) {
	var o Org
	err := s.pool.QueryRow(ctx, `SELECT id, name, created_at FROM organizations WHERE id = $1`, id).Scan(&o.ID, &o.Name, &o.CreatedAt)
	if err != nil {
		return Org{}, fmt.Errorf("store: org: %w", noRows(err))
	}
	return o, nil
}

// Orgs lists organisations by id.
func (s *Store) Orgs(ctx context.Context, p Page) ([]Org, string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, name, created_at FROM organizations WHERE id > $1 ORDER BY id LIMIT $2`, p.After, p.limit()+1)
	if err != nil {
		return nil, "", fmt.Errorf("store: orgs: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Org, error) {
		var o Org
		return o, r.Scan(&o.ID, &o.Name, &o.CreatedAt)
	})
	if err != nil {
		return nil, "", fmt.Errorf("store: orgs: %w", err)
	}
	out, next := page(out, p.limit(), func(o Org) string { return o.ID })
	return out, next, nil
}

// DeleteOrg deletes an organisation and everything in it, clusters and
// their topics included.
func (s *Store) DeleteOrg(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `
		WITH d AS (DELETE FROM organizations WHERE id = $1 RETURNING 1)
		SELECT pg_notify('eddy_metadata', '') FROM d`, id)
	if err != nil {
		return fmt.Errorf("store: delete org: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// CreateServiceAccount creates a (non-admin) service account.
func (s *Store) CreateServiceAccount(ctx context.Context, orgID, name, description string) (ServiceAccount, error) {
	sa := ServiceAccount{ID: NewID("sa"), OrgID: orgID, Name: name, Description: description}
	err := s.pool.QueryRow(ctx, `
		INSERT INTO service_accounts (id, org_id, name, description) VALUES ($1, $2, $3, $4)
		RETURNING created_at`, sa.ID, orgID, name, description).Scan(&sa.CreatedAt)
	if isUniqueViolation(err) {
		return sa, fmt.Errorf("%w: service account %q", ErrExists, name)
	}
	if isFKViolation(err) {
		return sa, ErrNotFound
	}
	if err != nil {
		return sa, fmt.Errorf("store: create service account: %w", err)
	}
	return sa, nil
}

const saCols = `id, org_id, name, description, org_admin, created_at`

func scanSA(r pgx.CollectableRow) (ServiceAccount, error) {
	var sa ServiceAccount
	return sa, r.Scan(&sa.ID, &sa.OrgID, &sa.Name, &sa.Description, &sa.OrgAdmin, &sa.CreatedAt)
}

// ServiceAccount returns one service account of orgID.
func (s *Store) ServiceAccount(ctx context.Context, orgID, id string) (ServiceAccount, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+saCols+` FROM service_accounts WHERE org_id = $1 AND id = $2`, orgID, id)
	sa, err := pgx.CollectExactlyOneRow(rows, scanSA)
	if err != nil {
		return sa, fmt.Errorf("store: service account: %w", noRows(err))
	}
	return sa, nil
}

// ServiceAccounts lists orgID's service accounts by id.
func (s *Store) ServiceAccounts(ctx context.Context, orgID string, p Page) ([]ServiceAccount, string, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+saCols+` FROM service_accounts WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3`, orgID, p.After, p.limit()+1)
	out, err := pgx.CollectRows(rows, scanSA)
	if err != nil {
		return nil, "", fmt.Errorf("store: service accounts: %w", err)
	}
	out, next := page(out, p.limit(), func(sa ServiceAccount) string { return sa.ID })
	return out, next, nil
}

// UpdateServiceAccount renames a service account of orgID or changes its
// description; nil leaves a field as it is. A name another account of the
// organisation has is ErrExists.
func (s *Store) UpdateServiceAccount(ctx context.Context, orgID, id string, name, description *string) (ServiceAccount, error) {
	rows, _ := s.pool.Query(ctx, `
		UPDATE service_accounts SET name = coalesce($3, name), description = coalesce($4, description)
		WHERE org_id = $1 AND id = $2
		RETURNING `+saCols, orgID, id, name, description)
	sa, err := pgx.CollectExactlyOneRow(rows, scanSA)
	if isUniqueViolation(err) {
		return sa, fmt.Errorf("%w: service account %q", ErrExists, *name)
	}
	if err != nil {
		return sa, fmt.Errorf("store: update service account: %w", noRows(err))
	}
	return sa, nil
}

// DeleteServiceAccount deletes a service account with its keys and role
// bindings.
func (s *Store) DeleteServiceAccount(ctx context.Context, orgID, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM service_accounts WHERE org_id = $1 AND id = $2`, orgID, id)
	if err != nil {
		return fmt.Errorf("store: delete service account: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// CreateAPIKey stores a key for a service account of orgID, optionally
// scoped to one of orgID's clusters. A service account or cluster outside
// orgID is ErrNotFound. scram holds the secret's SCRAM credentials.
func (s *Store) CreateAPIKey(ctx context.Context, orgID, saID, clusterID, description string, secretHash, scram []byte) (APIKey, error) {
	k := APIKey{ID: NewID("key"), OrgID: orgID, ServiceAccountID: saID, ClusterID: clusterID, Description: description, SecretHash: secretHash, SCRAM: scram}
	err := s.pool.QueryRow(ctx, `
		INSERT INTO api_keys (id, org_id, service_account_id, cluster_id, secret_hash, description, scram)
		SELECT $1, $2, $3, NULLIF($4, ''), $5, $6, $7
		WHERE EXISTS (SELECT 1 FROM service_accounts WHERE id = $3 AND org_id = $2)
		  AND ($4 = '' OR EXISTS (SELECT 1 FROM virtual_clusters WHERE id = $4 AND org_id = $2))
		RETURNING created_at`, k.ID, orgID, saID, clusterID, secretHash, description, scram).Scan(&k.CreatedAt)
	if err != nil {
		return k, fmt.Errorf("store: create api key: %w", noRows(err))
	}
	return k, nil
}

const keyCols = `k.id, k.org_id, k.service_account_id, coalesce(k.cluster_id, ''), k.description, k.secret_hash, k.scram,
	k.created_at, sa.org_admin`

func scanKey(r pgx.CollectableRow) (APIKey, error) {
	var k APIKey
	return k, r.Scan(&k.ID, &k.OrgID, &k.ServiceAccountID, &k.ClusterID, &k.Description, &k.SecretHash, &k.SCRAM,
		&k.CreatedAt, &k.OrgAdmin)
}

// APIKey returns one key of orgID.
func (s *Store) APIKey(ctx context.Context, orgID, id string) (APIKey, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+keyCols+` FROM api_keys k JOIN service_accounts sa ON sa.id = k.service_account_id
		WHERE k.org_id = $1 AND k.id = $2`, orgID, id)
	k, err := pgx.CollectExactlyOneRow(rows, scanKey)
	if err != nil {
		return k, fmt.Errorf("store: api key: %w", noRows(err))
	}
	return k, nil
}

// KeyForAuth returns the key id, in any organisation, for checking a
// presented secret against its hash or SCRAM credentials (REST and SASL);
// ErrNotFound if it does not exist (or was deleted: revocation).
func (s *Store) KeyForAuth(ctx context.Context, id string) (APIKey, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+keyCols+` FROM api_keys k JOIN service_accounts sa ON sa.id = k.service_account_id
		WHERE k.id = $1`, id)
	k, err := pgx.CollectExactlyOneRow(rows, scanKey)
	if err != nil {
		return k, fmt.Errorf("store: api key: %w", noRows(err))
	}
	return k, nil
}

// APIKeys lists orgID's keys by id, only those of service account saID
// unless it is "".
func (s *Store) APIKeys(ctx context.Context, orgID, saID string, p Page) ([]APIKey, string, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+keyCols+` FROM api_keys k JOIN service_accounts sa ON sa.id = k.service_account_id
		WHERE k.org_id = $1 AND ($2 = '' OR k.service_account_id = $2) AND k.id > $3 ORDER BY k.id LIMIT $4`,
		orgID, saID, p.After, p.limit()+1)
	out, err := pgx.CollectRows(rows, scanKey)
	if err != nil {
		return nil, "", fmt.Errorf("store: api keys: %w", err)
	}
	out, next := page(out, p.limit(), func(k APIKey) string { return k.ID })
	return out, next, nil
}

// DeleteAPIKey revokes a key.
func (s *Store) DeleteAPIKey(ctx context.Context, orgID, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM api_keys WHERE org_id = $1 AND id = $2`, orgID, id)
	if err != nil {
		return fmt.Errorf("store: delete api key: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// RoleBinding grants a service account a role on a cluster.
type RoleBinding struct {
	ID               string
	OrgID            string
	ClusterID        string
	ServiceAccountID string
	Role             string
	CreatedAt        time.Time
}

// CreateRoleBinding binds; the service account and the cluster must both
// belong to orgID.
func (s *Store) CreateRoleBinding(ctx context.Context, orgID, clusterID, saID, role string) (RoleBinding, error) {
	rb := RoleBinding{ID: NewID("rb"), OrgID: orgID, ClusterID: clusterID, ServiceAccountID: saID, Role: role}
	err := s.pool.QueryRow(ctx, `
		INSERT INTO role_bindings (id, org_id, cluster_id, service_account_id, role)
		SELECT $1, $2, $3, $4, $5
		WHERE EXISTS (SELECT 1 FROM service_accounts WHERE id = $4 AND org_id = $2)
		  AND EXISTS (SELECT 1 FROM virtual_clusters WHERE id = $3 AND org_id = $2)
		RETURNING created_at`, rb.ID, orgID, clusterID, saID, role).Scan(&rb.CreatedAt)
	if isUniqueViolation(err) {
		return rb, fmt.Errorf("%w: %s already has role %s", ErrExists, saID, role)
	}
	if err != nil {
		return rb, fmt.Errorf("store: create role binding: %w", noRows(err))
	}
	return rb, nil
}

// RoleBindings lists the bindings on one cluster by id.
func (s *Store) RoleBindings(ctx context.Context, orgID, clusterID string, p Page) ([]RoleBinding, string, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT id, org_id, cluster_id, service_account_id, role, created_at FROM role_bindings
		WHERE org_id = $1 AND cluster_id = $2 AND id > $3 ORDER BY id LIMIT $4`, orgID, clusterID, p.After, p.limit()+1)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RoleBinding, error) {
		var rb RoleBinding
		return rb, r.Scan(&rb.ID, &rb.OrgID, &rb.ClusterID, &rb.ServiceAccountID, &rb.Role, &rb.CreatedAt)
	})
	if err != nil {
		return nil, "", fmt.Errorf("store: role bindings: %w", err)
	}
	out, next := page(out, p.limit(), func(rb RoleBinding) string { return rb.ID })
	return out, next, nil
}

// RoleBinding returns one binding on one of orgID's clusters.
func (s *Store) RoleBinding(ctx context.Context, orgID, clusterID, id string) (RoleBinding, error) {
	var rb RoleBinding
	err := s.pool.QueryRow(ctx, `
		SELECT id, org_id, cluster_id, service_account_id, role, created_at FROM role_bindings
		WHERE org_id = $1 AND cluster_id = $2 AND id = $3`, orgID, clusterID, id).
		Scan(&rb.ID, &rb.OrgID, &rb.ClusterID, &rb.ServiceAccountID, &rb.Role, &rb.CreatedAt)
	if err != nil {
		return rb, fmt.Errorf("store: role binding: %w", noRows(err))
	}
	return rb, nil
}

// DeleteRoleBinding removes a binding from a cluster.
func (s *Store) DeleteRoleBinding(ctx context.Context, orgID, clusterID, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM role_bindings WHERE org_id = $1 AND cluster_id = $2 AND id = $3`, orgID, clusterID, id)
	if err != nil {
		return fmt.Errorf("store: delete role binding: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}
