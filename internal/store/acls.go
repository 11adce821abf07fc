package store

// Authorization data: what a principal may do in a virtual cluster (its
// organisation-admin flag, role bindings and ACLs), and the Kafka ACL
// APIs' reads and writes of the acls table. Changes to any of it are
// announced on channel eddy_authz by triggers (migrations/0008_acls.sql).

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/eddy-streams/eddy/internal/acl"
)

// Grants reads what service account sa may do in cluster: nothing at all
// (zero Grants) if the account does not exist or belongs to another
// organisation than the cluster.
func (s *Store) Grants(ctx context.Context, cluster, sa string) (acl.Grants, error) {
	var g acl.Grants
	tx, err := s.pool.BeginTx(ctx, txRepeatableReadRO)
	if err != nil {
		return g, fmt.Errorf("store: grants: %w", err)
	}
	defer tx.Rollback(ctx)
	err = tx.QueryRow(ctx, `
		SELECT sa.org_admin FROM service_accounts sa JOIN virtual_clusters vc ON vc.org_id = sa.org_id
		WHERE sa.id = $2 AND vc.id = $1`, cluster, sa).Scan(&g.OrgAdmin)
	if errors.Is(err, pgx.ErrNoRows) {
		return acl.Grants{}, tx.Commit(ctx)
	}
	if err != nil {
		return g, fmt.Errorf("store: grants: %w", err)
	}
	rows, _ := tx.Query(ctx, `SELECT role FROM role_bindings WHERE cluster_id = $1 AND service_account_id = $2`, cluster, sa)
	if g.Roles, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return g, fmt.Errorf("store: grants: %w", err)
	}
	rows, _ = tx.Query(ctx, `SELECT `+aclCols+` FROM acls WHERE cluster_id = $1 AND principal IN ($2, $3)`,
		cluster, acl.Principal(sa), acl.AnyPrincipal)
	if g.ACLs, err = pgx.CollectRows(rows, scanACL); err != nil {
		return g, fmt.Errorf("store: grants: %w", err)
	}
	return g, tx.Commit(ctx)
}

const aclCols = `id, cluster_id, principal, resource_type, resource_name, pattern_type, operation, permission, host`

func scanACL(r pgx.CollectableRow) (acl.ACL, error) {
	var a acl.ACL
	return a, r.Scan(&a.ID, &a.Cluster, &a.Principal, &a.ResourceType, &a.ResourceName, &a.PatternType, &a.Operation, &a.Permission, &a.Host)
}

// ACLs returns every ACL of cluster; filters are applied by the caller
// (acl.Filter), since a cluster holds few.
func (s *Store) ACLs(ctx context.Context, cluster string) ([]acl.ACL, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+aclCols+` FROM acls WHERE cluster_id = $1 ORDER BY id`, cluster)
	out, err := pgx.CollectRows(rows, scanACL)
	if err != nil {
		return nil, fmt.Errorf("store: acls: %w", err)
	}
	return out, nil
}

// maxACLs bounds the ACLs of one cluster: brokers hold a principal's in
// memory and scan them per decision.
const maxACLs = 10000

// CreateACL stores a validated ACL in its cluster. Creating one that
// exists already succeeds and changes nothing, as in Kafka. Past maxACLs
// it fails with ErrInvalid.
func (s *Store) CreateACL(ctx context.Context, a acl.ACL) error {
	tag, err := s.pool.Exec(ctx, `
		INSERT INTO acls (id, cluster_id, principal, resource_type, resource_name, pattern_type, operation, permission, host)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9
		WHERE (SELECT count(*) FROM acls WHERE cluster_id = $2) < $10
		ON CONFLICT (cluster_id, principal, resource_type, resource_name, pattern_type, operation, permission, host) DO NOTHING`,
		newID("acl"), a.Cluster, a.Principal, a.ResourceType, a.ResourceName, a.PatternType, a.Operation, a.Permission, a.Host, maxACLs)
	if err != nil {
		return fmt.Errorf("store: create acl: %w", err)
	}
	if tag.RowsAffected() == 0 {
		// Either it existed (fine) or the cluster is full.
		var exists bool
		err := s.pool.QueryRow(ctx, `
			SELECT EXISTS (SELECT 1 FROM acls WHERE cluster_id = $1 AND principal = $2 AND resource_type = $3 AND resource_name = $4
			  AND pattern_type = $5 AND operation = $6 AND permission = $7 AND host = $8)`,
			a.Cluster, a.Principal, a.ResourceType, a.ResourceName, a.PatternType, a.Operation, a.Permission, a.Host).Scan(&exists)
		if err != nil {
			return fmt.Errorf("store: create acl: %w", err)
		}
		if !exists {
			return fmt.Errorf("%w: the cluster has %d ACLs, the most it may", ErrInvalid, maxACLs)
		}
	}
	return nil
}

// DeleteACLs deletes the ACLs of cluster with the given ids and returns
// those it deleted (an id deleted meanwhile by someone else is skipped).
func (s *Store) DeleteACLs(ctx context.Context, cluster string, ids []string) ([]acl.ACL, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, _ := s.pool.Query(ctx, `DELETE FROM acls WHERE cluster_id = $1 AND id = ANY($2) RETURNING `+aclCols, cluster, ids)
	out, err := pgx.CollectRows(rows, scanACL)
	if err != nil {
		return nil, fmt.Errorf("store: delete acls: %w", err)
	}
	return out, nil
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID makes ids of the control plane's form: prefix-<20 random
// base32 characters>.
func newID(prefix string) string {
	var b [13]byte
	rand.Read(b[:])
	return prefix + "-" + idEncoding.EncodeToString(b[:])[:20]
}
