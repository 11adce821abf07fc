package store

// Authorization data: what a principal may do in a virtual cluster (its
// organisation-admin flag, role bindings and ACLs), and the Kafka ACLs of
// a cluster, which REST (api) and the Kafka ACL APIs (broker) read and
// change through the same functions. Changes to any of it are announced
// on channel eddy_authz by triggers (migrations/0008_acls.sql).

import (
	"context"
	"errors"
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
	as, err := pgx.CollectRows(rows, scanACL)
	if err != nil {
		return g, fmt.Errorf("store: grants: %w", err)
	}
	for _, a := range as {
		g.ACLs = append(g.ACLs, a.ACL)
	}
	return g, tx.Commit(ctx)
}

// maxACLs bounds the ACLs of one cluster: brokers hold a principal's in
// memory and scan them per decision.
const maxACLs = 10000

// CreateACL stores a validated ACL in its cluster, of orgID (AnyOrg: any;
// a cluster outside orgID is ErrNotFound). An identical ACL is ErrExists,
// naming its id: Kafka treats that as success, REST as a conflict. Past
// maxACLs ACLs in the cluster it fails with ErrInvalid.
func (s *Store) CreateACL(ctx context.Context, orgID string, a acl.ACL) (ACL, error) {
	out := ACL{ACL: a}
	out.ID = NewID("acl")
	err := s.pool.QueryRow(ctx, `
		INSERT INTO acls (id, cluster_id, principal, resource_type, resource_name, pattern_type, operation, permission, host)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9
		WHERE EXISTS (SELECT 1 FROM virtual_clusters WHERE id = $2 AND ($10 = '*' OR org_id = $10))
		  AND (SELECT count(*) FROM acls WHERE cluster_id = $2) < $11
		ON CONFLICT (cluster_id, principal, resource_type, resource_name, pattern_type, operation, permission, host) DO NOTHING
		RETURNING created_at`,
		out.ID, a.Cluster, a.Principal, a.ResourceType, a.ResourceName, a.PatternType, a.Operation, a.Permission, a.Host,
		orgID, maxACLs,
	).Scan(&out.CreatedAt)
	if !errors.Is(err, pgx.ErrNoRows) {
		if err != nil {
			return out, fmt.Errorf("store: create acl: %w", err)
		}
		return out, nil
	}
	// Nothing was inserted. The cluster is checked first, so that no one
	// learns of the ACLs of another organisation's cluster.
	var (
		mine bool
		id   *string
	)
	err = s.pool.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM virtual_clusters WHERE id = $1 AND ($9 = '*' OR org_id = $9)),
			(SELECT id FROM acls WHERE cluster_id = $1 AND principal = $2 AND resource_type = $3 AND resource_name = $4
			  AND pattern_type = $5 AND operation = $6 AND permission = $7 AND host = $8)`,
		a.Cluster, a.Principal, a.ResourceType, a.ResourceName, a.PatternType, a.Operation, a.Permission, a.Host, orgID,
	).Scan(&mine, &id)
	switch {
	case err != nil:
		return out, fmt.Errorf("store: create acl: %w", err)
	case !mine:
		return out, fmt.Errorf("store: create acl: %w", ErrNotFound)
	case id != nil:
		return out, fmt.Errorf("%w: an identical ACL exists (%s)", ErrExists, *id)
	default:
		return out, fmt.Errorf("%w: the cluster has %d ACLs, the most it may", ErrInvalid, maxACLs)
	}
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

// acls reads the ACLs of cluster clusterID of orgID (AnyOrg: any) by id,
// after the id after, at most limit of them (0: all).
func (s *Store) acls(ctx context.Context, orgID, clusterID, after string, limit int) ([]ACL, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+aclCols+` FROM acls
		WHERE cluster_id = $2 AND ($1 = '*' OR cluster_id IN (SELECT id FROM virtual_clusters WHERE org_id = $1)) AND id > $3
		ORDER BY id LIMIT nullif($4, 0)`, orgID, clusterID, after, limit)
	return pgx.CollectRows(rows, scanACL)
}

// ACLs lists the ACLs of a cluster of orgID by id, a page at a time (REST).
func (s *Store) ACLs(ctx context.Context, orgID, clusterID string, p Page) ([]ACL, string, error) {
	out, err := s.acls(ctx, orgID, clusterID, p.After, p.limit()+1)
	if err != nil {
		return nil, "", fmt.Errorf("store: acls: %w", err)
	}
	out, next := page(out, p.limit(), func(a ACL) string { return a.ID })
	return out, next, nil
}

// ClusterACLs returns every ACL of cluster at once (the Kafka ACL APIs,
// which filter with acl.Filter: a cluster holds at most maxACLs).
func (s *Store) ClusterACLs(ctx context.Context, cluster string) ([]ACL, error) {
	out, err := s.acls(ctx, AnyOrg, cluster, "", 0)
	if err != nil {
		return nil, fmt.Errorf("store: acls: %w", err)
	}
	return out, nil
}

// DeleteACLs deletes the ACLs with the given ids of a cluster of orgID
// (AnyOrg: any) and returns those it deleted (an id deleted meanwhile by
// someone else is skipped).
func (s *Store) DeleteACLs(ctx context.Context, orgID, clusterID string, ids []string) ([]ACL, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, _ := s.pool.Query(ctx, `DELETE FROM acls
		WHERE cluster_id = $2 AND ($1 = '*' OR cluster_id IN (SELECT id FROM virtual_clusters WHERE org_id = $1)) AND id = ANY($3)
		RETURNING `+aclCols, orgID, clusterID, ids)
	out, err := pgx.CollectRows(rows, scanACL)
	if err != nil {
		return nil, fmt.Errorf("store: delete acls: %w", err)
	}
	return out, nil
}

// DeleteACL removes one ACL of a cluster of orgID; ErrNotFound if there
// is none.
func (s *Store) DeleteACL(ctx context.Context, orgID, clusterID, id string) error {
	gone, err := s.DeleteACLs(ctx, orgID, clusterID, []string{id})
	if err != nil {
		return err
	}
	if len(gone) == 0 {
		return ErrNotFound
	}
	return nil
}
