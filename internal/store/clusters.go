package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eddy-streams/eddy/internal/limits"
)

// Cluster statuses: a cluster is created provisioning and becomes ready
// once the provisioner has run for it.
const (
	StatusProvisioning = "provisioning"
	StatusReady        = "ready"
)

// Cluster is a virtual cluster. The metadata snapshot brokers route by
// (Snapshot) fills only ID, OrgID, Name, AutoCreateTopics and
// DefaultPartitions.
type Cluster struct {
	ID                  string
	OrgID               string // "" for clusters outside any organisation (development)
	Name                string
	Status              string
	Limits              limits.Limits // the cluster's own
	PlanID              string        // its organisation's plan (DefaultPlan outside any)
	Ceilings            limits.Limits // the plan's
	DefaultTopicConfigs map[string]string
	AutoCreateTopics    bool  // topics are created on first use (Metadata, Produce)
	DefaultPartitions   int32 // of topics created on first use
	Version             int64 // bumped by every update
	Partitions          int32 // partitions of all its topics
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

// limitCols are limits.Limits' columns, in the order of limitArgs: the
// same in virtual_clusters (a cluster's limits) and billing_plans (a
// plan's ceilings).
const limitCols = `ingress_mbps, egress_mbps, max_requests_per_sec, max_connections, max_partitions, max_storage_gb,
	max_topics, max_groups, producer_ids_per_hour, producer_id_burst, max_retention_ms, max_retention_bytes`

// limitColsOf is limitCols qualified by a table alias.
func limitColsOf(alias string) string {
	cols := strings.Split(limitCols, ",")
	for i, c := range cols {
		cols[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// params returns n placeholders from $first: "$4, $5, $6".
func params(first, n int) string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = "$" + strconv.Itoa(first+i)
	}
	return strings.Join(ps, ", ")
}

func limitArgs(l limits.Limits) []any {
	return []any{l.IngressMBps, l.EgressMBps, l.MaxRequestsPerSec, l.MaxConnections, l.MaxPartitions, l.MaxStorageGB,
		l.MaxTopics, l.MaxGroups, l.ProducerIDsPerHour, l.ProducerIDBurst, l.MaxRetentionMs, l.MaxRetentionBytes}
}

func limitDests(l *limits.Limits) []any {
	return []any{&l.IngressMBps, &l.EgressMBps, &l.MaxRequestsPerSec, &l.MaxConnections, &l.MaxPartitions, &l.MaxStorageGB,
		&l.MaxTopics, &l.MaxGroups, &l.ProducerIDsPerHour, &l.ProducerIDBurst, &l.MaxRetentionMs, &l.MaxRetentionBytes}
}

// DefaultPlan is the plan of organisations created without one (the
// column default of organizations.billing_plan_id) and of the clusters
// outside any organisation.
const DefaultPlan = "standard"

// withPlan joins a cluster c to its plan p: the one join that gives a
// cluster's ceilings, and with its limits its effective limits.
const withPlan = ` LEFT JOIN organizations o ON o.id = c.org_id
	JOIN billing_plans p ON p.id = coalesce(o.billing_plan_id, '` + DefaultPlan + `')`

var clusterCols = `c.id, coalesce(c.org_id, ''), c.name, c.status, ` + limitColsOf("c") + `, p.id, ` + limitColsOf("p") + `,
	c.default_topic_configs, c.auto_create_topics, c.default_partitions, c.version, c.created_at, c.updated_at,
	(SELECT count(*) FROM partitions p JOIN topics t ON t.id = p.topic_id WHERE t.cluster_id = c.id)::int`

func scanCluster(r pgx.CollectableRow) (Cluster, error) {
	var c Cluster
	var cfg []byte
	dest := append([]any{&c.ID, &c.OrgID, &c.Name, &c.Status}, limitDests(&c.Limits)...)
	dest = append(append(dest, &c.PlanID), limitDests(&c.Ceilings)...)
	err := r.Scan(append(dest, &cfg, &c.AutoCreateTopics, &c.DefaultPartitions,
		&c.Version, &c.CreatedAt, &c.UpdatedAt, &c.Partitions)...)
	if err != nil {
		return c, err
	}
	c.DefaultTopicConfigs, err = unmarshalConfigs(cfg)
	return c, err
}

// CreateCluster creates a virtual cluster in status provisioning and wakes
// the provisioner (NOTIFY eddy_provision) and the brokers. Limits l leaves
// unset (zero) take their default.
func (s *Store) CreateCluster(ctx context.Context, orgID, name string, l limits.Limits, defaults map[string]string) (Cluster, error) {
	l = l.OrDefaults()
	id := NewID("vc")
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO virtual_clusters (id, org_id, name, status, default_topic_configs, `+limitCols+`)
			VALUES ($1, $2, $3, 'provisioning', $4, `+params(5, len(limitArgs(l)))+`)`,
			append([]any{id, orgID, name, marshalConfigs(defaults)}, limitArgs(l)...)...); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify('eddy_provision', ''), pg_notify('eddy_metadata', '')`)
		return err
	})
	if isUniqueViolation(err) {
		return Cluster{}, fmt.Errorf("%w: cluster %q", ErrExists, name)
	}
	if isFKViolation(err) {
		return Cluster{}, ErrNotFound
	}
	if err != nil {
		return Cluster{}, fmt.Errorf("store: create cluster: %w", err)
	}
	return s.Cluster(ctx, orgID, id)
}

// Cluster returns one of orgID's clusters.
func (s *Store) Cluster(ctx context.Context, orgID, id string) (Cluster, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+clusterCols+` FROM virtual_clusters c`+withPlan+` WHERE c.org_id = $1 AND c.id = $2`, orgID, id)
	c, err := pgx.CollectExactlyOneRow(rows, scanCluster)
	if err != nil {
		return c, fmt.Errorf("store: cluster: %w", noRows(err))
	}
	return c, nil
}

// Clusters lists orgID's clusters by id.
func (s *Store) Clusters(ctx context.Context, orgID string, p Page) ([]Cluster, string, error) {
	rows, _ := s.pool.Query(ctx, `SELECT `+clusterCols+` FROM virtual_clusters c`+withPlan+`
		WHERE c.org_id = $1 AND c.id > $2 ORDER BY c.id LIMIT $3`, orgID, p.After, p.limit()+1)
	out, err := pgx.CollectRows(rows, scanCluster)
	if err != nil {
		return nil, "", fmt.Errorf("store: clusters: %w", err)
	}
	out, next := page(out, p.limit(), func(c Cluster) string { return c.ID })
	return out, next, nil
}

// UpdateCluster applies change to a cluster under a row lock. With
// ifVersion > 0 it fails with ErrStale unless the stored version is
// ifVersion. Name, Limits and DefaultTopicConfigs are written back.
func (s *Store) UpdateCluster(ctx context.Context, orgID, id string, ifVersion int64, change func(*Cluster) error) (Cluster, error) {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Lock first, then read in a new statement (and so a new snapshot),
		// so the partition count includes topics committed while we waited.
		if err := lockCluster(ctx, tx, orgID, id); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `SELECT `+clusterCols+` FROM virtual_clusters c`+withPlan+` WHERE c.org_id = $1 AND c.id = $2`, orgID, id)
		c, err := pgx.CollectExactlyOneRow(rows, scanCluster)
		if err != nil {
			return noRows(err)
		}
		if ifVersion > 0 && c.Version != ifVersion {
			return ErrStale
		}
		if err := change(&c); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			UPDATE virtual_clusters SET name = $2, default_topic_configs = $3, version = version + 1, updated_at = now(),
				(`+limitCols+`) = (`+params(4, len(limitArgs(c.Limits)))+`)
			WHERE id = $1`, append([]any{id, c.Name, marshalConfigs(c.DefaultTopicConfigs)}, limitArgs(c.Limits)...)...); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify('eddy_metadata', '')`)
		return err
	})
	if isUniqueViolation(err) {
		return Cluster{}, fmt.Errorf("%w: cluster name taken", ErrExists)
	}
	if err != nil {
		return Cluster{}, fmt.Errorf("store: update cluster: %w", err)
	}
	return s.Cluster(ctx, orgID, id)
}

// DeleteCluster deletes a cluster with its topics, offsets, keys scoped to
// it and role bindings; brokers drop it at their next metadata refresh.
func (s *Store) DeleteCluster(ctx context.Context, orgID, id string) error {
	tag, err := s.pool.Exec(ctx, `
		WITH d AS (DELETE FROM virtual_clusters WHERE org_id = $1 AND id = $2 RETURNING 1)
		SELECT pg_notify('eddy_metadata', '') FROM d`, orgID, id)
	if err != nil {
		return fmt.Errorf("store: delete cluster: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// MarkClustersReady moves every cluster still provisioning to ready and
// returns their ids.
func (s *Store) MarkClustersReady(ctx context.Context) ([]string, error) {
	rows, _ := s.pool.Query(ctx, `
		UPDATE virtual_clusters SET status = 'ready', updated_at = now(), version = version + 1
		WHERE status = 'provisioning' RETURNING id`)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: mark clusters ready: %w", err)
	}
	return ids, nil
}

// lockCluster takes the row lock of cluster clusterID of orgID (AnyOrg:
// any), ErrNotFound if there is none. The lock serialises every change of
// a cluster's partition count with the others and with changes of its
// limits: whoever adds partitions takes it first, then the topic's.
func lockCluster(ctx context.Context, tx pgx.Tx, orgID, clusterID string) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM virtual_clusters WHERE id = $2 AND ($1 = '*' OR org_id = $1) FOR UPDATE`,
		orgID, clusterID).Scan(&one)
	return noRows(err)
}

// EnsureCluster creates the virtual cluster id, with the default limits,
// if it does not exist. The broker uses it for the cluster of its
// anonymous development listener.
func (s *Store) EnsureCluster(ctx context.Context, id, name string) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO virtual_clusters (id, name, `+limitCols+`) VALUES ($1, $2, `+params(3, len(limitArgs(limits.Limits{})))+`)
		ON CONFLICT (id) DO NOTHING`, append([]any{id, name}, limitArgs(limits.Defaults())...)...)
	if err != nil {
		return fmt.Errorf("store: ensure cluster %s: %w", id, err)
	}
	return nil
}

// SetAutoCreateTopics switches automatic topic creation for a cluster.
func (s *Store) SetAutoCreateTopics(ctx context.Context, clusterID string, on bool) error {
	tag, err := s.pool.Exec(ctx, `UPDATE virtual_clusters SET auto_create_topics = $2 WHERE id = $1`, clusterID, on)
	if err != nil {
		return fmt.Errorf("store: set auto-create: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}
