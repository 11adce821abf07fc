package store

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eddy-streams/eddy/internal/clusterconfig"
	"github.com/eddy-streams/eddy/internal/limits"
)

// Cluster statuses: a cluster is created provisioning and becomes ready
// once the provisioner has run for it.
const (
	StatusProvisioning = "provisioning"
	StatusReady        = "ready"
)

// Cluster is a virtual cluster. The metadata snapshot brokers route by
// (Snapshot) fills only ID, OrgID, Name, BrokerConfigs, AutoCreateTopics
// and DefaultPartitions.
type Cluster struct {
	ID                  string
	OrgID               string // "" for clusters outside any organisation (development)
	Name                string
	Status              string
	Limits              limits.Limits // the cluster's own
	PlanID              string        // its organisation's plan (DefaultPlan outside any)
	Ceilings            limits.Limits // the plan's
	DefaultTopicConfigs map[string]string
	// BrokerConfigs are the Kafka broker configs set explicitly
	// (internal/clusterconfig); AutoCreateTopics and DefaultPartitions
	// are read from them (auto.create.topics.enable, num.partitions).
	BrokerConfigs     map[string]string
	AutoCreateTopics  bool  // topics are created on first use (Metadata, Produce)
	DefaultPartitions int32 // of topics created on first use or without a count
	// AllowedCIDRs is the cluster's IP allow-list (internal/allowlist's
	// canonical form); empty: clients from anywhere.
	AllowedCIDRs []string
	Version      int64 // bumped by every update
	Partitions   int32 // partitions of all its topics
	CreatedAt    time.Time
	UpdatedAt    time.Time
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
	c.default_topic_configs, c.broker_configs, c.allowed_cidrs, c.version, c.created_at, c.updated_at,
	(SELECT count(*) FROM partitions p JOIN topics t ON t.id = p.topic_id WHERE t.cluster_id = c.id)::int`

func scanCluster(r pgx.CollectableRow) (Cluster, error) {
	var c Cluster
	var cfg, bcfg []byte
	dest := append([]any{&c.ID, &c.OrgID, &c.Name, &c.Status}, limitDests(&c.Limits)...)
	dest = append(append(dest, &c.PlanID), limitDests(&c.Ceilings)...)
	err := r.Scan(append(dest, &cfg, &bcfg, &c.AllowedCIDRs,
		&c.Version, &c.CreatedAt, &c.UpdatedAt, &c.Partitions)...)
	if err != nil {
		return c, err
	}
	if c.DefaultTopicConfigs, err = unmarshalConfigs(cfg); err != nil {
		return c, err
	}
	return c, c.setBrokerConfigs(bcfg)
}

// setBrokerConfigs fills BrokerConfigs from their column and what is read
// from them.
func (c *Cluster) setBrokerConfigs(col []byte) error {
	var err error
	if c.BrokerConfigs, err = unmarshalConfigs(col); err != nil {
		return fmt.Errorf("cluster %s broker configs: %w", c.ID, err)
	}
	c.AutoCreateTopics = clusterconfig.AutoCreate(c.BrokerConfigs)
	c.DefaultPartitions = clusterconfig.Partitions(c.BrokerConfigs)
	return nil
}

// CreateCluster creates a virtual cluster in status provisioning and wakes
// the provisioner (NOTIFY eddy_provision) and the brokers. Limits l leaves
// unset (zero) take their default.
func (s *Store) CreateCluster(ctx context.Context, orgID, name string, l limits.Limits, defaults map[string]string) (Cluster, error) {
	return s.CreateClusterWith(ctx, orgID, name, l, defaults, nil, nil)
}

// CreateClusterWith is CreateCluster with broker configs (Kafka names,
// validated by the caller against clusterconfig and the plan) and an IP
// allow-list (canonical, internal/allowlist.Parse).
func (s *Store) CreateClusterWith(ctx context.Context, orgID, name string, l limits.Limits, defaults, brokerConfigs map[string]string, allowed []string) (Cluster, error) {
	l = l.OrDefaults()
	id := NewID("vc")
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO virtual_clusters (id, org_id, name, status, default_topic_configs, broker_configs, allowed_cidrs, `+limitCols+`)
			VALUES ($1, $2, $3, 'provisioning', $4, $5, $6, `+params(7, len(limitArgs(l)))+`)`,
			append([]any{id, orgID, name, marshalConfigs(defaults), marshalConfigs(brokerConfigs), nonNil(allowed)}, limitArgs(l)...)...); err != nil {
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
// ifVersion. Name, Limits, DefaultTopicConfigs, BrokerConfigs and
// AllowedCIDRs are written back.
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
			UPDATE virtual_clusters SET name = $2, default_topic_configs = $3, broker_configs = $4, allowed_cidrs = $5,
				version = version + 1, updated_at = now(),
				(`+limitCols+`) = (`+params(6, len(limitArgs(c.Limits)))+`)
			WHERE id = $1`, append([]any{id, c.Name, marshalConfigs(c.DefaultTopicConfigs), marshalConfigs(c.BrokerConfigs), nonNil(c.AllowedCIDRs)}, limitArgs(c.Limits)...)...); err != nil {
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

// SetAutoCreateTopics switches automatic topic creation for a cluster
// (auto.create.topics.enable).
func (s *Store) SetAutoCreateTopics(ctx context.Context, clusterID string, on bool) error {
	return s.SetBrokerConfigs(ctx, clusterID, false, func(cur map[string]string) (map[string]string, error) {
		cur[clusterconfig.AutoCreateTopics] = strconv.FormatBool(on)
		return cur, nil
	})
}

// SetBrokerConfigs replaces a cluster's broker configs with what change
// makes of the current ones (a map change may modify), under the cluster's
// row lock, and fails with ErrLimit if a config it changes exceeds the
// cluster's effective limits (clusterconfig.WithinChange). With
// validateOnly it checks against the limits in Postgres and writes
// nothing, as SetLimits. It is the Kafka API's AlterConfigs on the broker
// resource; the REST API goes through UpdateCluster.
func (s *Store) SetBrokerConfigs(ctx context.Context, clusterID string, validateOnly bool, change func(map[string]string) (map[string]string, error)) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		cc, err := readClusterConfigs(ctx, tx, AnyOrg, clusterID, true)
		if err != nil {
			return err
		}
		// change may modify the map it is given.
		next, err := change(maps.Clone(cc.broker))
		if err != nil {
			return err
		}
		l, err := effectiveLimits(ctx, tx, clusterID)
		if err != nil {
			return err
		}
		if err := clusterconfig.WithinChange(cc.broker, next, l); err != nil {
			return fmt.Errorf("%w: %v", ErrLimit, strings.TrimPrefix(err.Error(), "limits: "))
		}
		if validateOnly {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE virtual_clusters SET broker_configs = $2, version = version + 1, updated_at = now() WHERE id = $1`,
			clusterID, marshalConfigs(next)); err != nil {
			return err
		}
		return notify(ctx, tx, "eddy_metadata")
	})
	if err != nil {
		return fmt.Errorf("store: set broker configs: %w", err)
	}
	return nil
}

// BrokerConfigs returns a cluster's explicit broker configs, read from
// Postgres rather than a snapshot so that an alteration through another
// broker shows at once.
func (s *Store) BrokerConfigs(ctx context.Context, clusterID string) (map[string]string, error) {
	cc, err := readClusterConfigs(ctx, s.pool, AnyOrg, clusterID, false)
	if err != nil {
		return nil, fmt.Errorf("store: broker configs: %w", err)
	}
	return cc.broker, nil
}

// clusterConfigs are a cluster's explicit broker configs and default topic
// configs, never nil.
type clusterConfigs struct{ broker, topic map[string]string }

// readClusterConfigs reads the configs of cluster clusterID of orgID
// (AnyOrg: any), ErrNotFound if there is none. With lock it also takes the
// cluster's row lock, as lockCluster, in the same statement, so what it
// read stays current until the transaction ends.
func readClusterConfigs(ctx context.Context, q querier, orgID, clusterID string, lock bool) (clusterConfigs, error) {
	sql := `SELECT broker_configs, default_topic_configs FROM virtual_clusters WHERE id = $2 AND ($1 = '*' OR org_id = $1)`
	if lock {
		sql += ` FOR UPDATE`
	}
	var bc, tc []byte
	if err := q.QueryRow(ctx, sql, orgID, clusterID).Scan(&bc, &tc); err != nil {
		return clusterConfigs{}, noRows(err)
	}
	var cc clusterConfigs
	var err error
	if cc.broker, err = unmarshalConfigs(bc); err != nil {
		return clusterConfigs{}, fmt.Errorf("broker configs of %s: %w", clusterID, err)
	}
	if cc.topic, err = unmarshalConfigs(tc); err != nil {
		return clusterConfigs{}, fmt.Errorf("default topic configs of %s: %w", clusterID, err)
	}
	// A JSON null unmarshals to a nil map; callers add to these.
	if cc.broker == nil {
		cc.broker = map[string]string{}
	}
	if cc.topic == nil {
		cc.topic = map[string]string{}
	}
	return cc, nil
}

// nonNil is list, or an empty one for a NOT NULL array column.
func nonNil(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

// ClusterAllowList returns the IP allow-list of one of orgID's clusters.
func (s *Store) ClusterAllowList(ctx context.Context, orgID, id string) ([]string, error) {
	var list []string
	err := s.pool.QueryRow(ctx, `SELECT allowed_cidrs FROM virtual_clusters WHERE org_id = $1 AND id = $2`, orgID, id).Scan(&list)
	if err != nil {
		return nil, fmt.Errorf("store: cluster allow-list: %w", noRows(err))
	}
	return list, nil
}
