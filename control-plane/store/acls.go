package store

// Kafka ACLs of a virtual cluster, as REST manages them. Brokers read and
// change the same table through the data plane's store (the Kafka ACL
// APIs); a trigger tells them when it changes (migrations/0008_acls.sql).

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eddy-streams/eddy/internal/acl"
)

// ACL is an ACL with its creation time.
type ACL struct {
	acl.ACL
	CreatedAt time.Time
}

const aclCols = `id, cluster_id, principal, resource_type, resource_name, pattern_type, operation, permission, host, created_at`

func scanACL(r pgx.CollectableRow) (ACL, error) {
	var a ACL
	return a, r.Scan(&a.ID, &a.Cluster, &a.Principal, &a.ResourceType, &a.ResourceName, &a.PatternType,
		&a.Operation, &a.Permission, &a.Host, &a.CreatedAt)
}

// CreateACL stores a (validated) ACL on one of orgID's clusters. An
// identical ACL is ErrExists (naming its id); a cluster outside orgID is
// ErrNotFound.
func (s *Store) CreateACL(ctx context.Context, orgID string, a acl.ACL) (ACL, error) {
	out := ACL{ACL: a}
	out.ID = NewID("acl")
	err := s.pool.QueryRow(ctx, `
		INSERT INTO acls (id, cluster_id, principal, resource_type, resource_name, pattern_type, operation, permission, host)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9
		WHERE EXISTS (SELECT 1 FROM virtual_clusters WHERE id = $2 AND org_id = $10)
		RETURNING created_at`,
		out.ID, a.Cluster, a.Principal, a.ResourceType, a.ResourceName, a.PatternType, a.Operation, a.Permission, a.Host, orgID,
	).Scan(&out.CreatedAt)
	if isUniqueViolation(err) {
		var id string
		s.pool.QueryRow(ctx, `
			SELECT id FROM acls WHERE cluster_id = $1 AND principal = $2 AND resource_type = $3 AND resource_name = $4
			  AND pattern_type = $5 AND operation = $6 AND permission = $7 AND host = $8`,
			a.Cluster, a.Principal, a.ResourceType, a.ResourceName, a.PatternType, a.Operation, a.Permission, a.Host).Scan(&id)
		return out, fmt.Errorf("%w: an identical ACL exists (%s)", ErrExists, id)
	}
	if err != nil {
		return out, fmt.Errorf("store: create acl: %w", noRows(err))
	}
	return out, nil
}

// GetACL returns one ACL of a cluster of orgID.
func (s *Store) GetACL(ctx context.Context, orgID, clusterID, id string) (ACL, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+aclCols+` FROM acls
		WHERE id = $3 AND cluster_id = $2 AND cluster_id IN (SELECT id FROM virtual_clusters WHERE org_id = $1)`, orgID, clusterID, id)
	a, err := pgx.CollectExactlyOneRow(rows, scanACL)
	if err != nil {
		return a, fmt.Errorf("store: acl: %w", noRows(err))
	}
	return a, nil
}

// ACLs lists a cluster's ACLs by id.
func (s *Store) ACLs(ctx context.Context, orgID, clusterID string, p Page) ([]ACL, string, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+aclCols+` FROM acls
		WHERE cluster_id = $2 AND cluster_id IN (SELECT id FROM virtual_clusters WHERE org_id = $1) AND id > $3
		ORDER BY id LIMIT $4`, orgID, clusterID, p.After, p.limit()+1)
	out, err := pgx.CollectRows(rows, scanACL)
	if err != nil {
		return nil, "", fmt.Errorf("store: acls: %w", err)
	}
	out, next := page(out, p.limit(), func(a ACL) string { return a.ID })
	return out, next, nil
}

// DeleteACL removes one ACL of a cluster of orgID.
func (s *Store) DeleteACL(ctx context.Context, orgID, clusterID, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM acls
		WHERE id = $3 AND cluster_id = $2 AND cluster_id IN (SELECT id FROM virtual_clusters WHERE org_id = $1)`, orgID, clusterID, id)
	if err != nil {
		return fmt.Errorf("store: delete acl: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}
