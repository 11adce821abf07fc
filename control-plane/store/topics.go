package store

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Topics here are the same rows the brokers create over the Kafka API
// (data-plane/store/topics.go): a topic created either way shows in both.

// Partition is one partition of a topic. Leader is -1 while the partition
// waits for placement.
type Partition struct {
	Partition     int32
	Leader        int32
	LeaderEpoch   int32
	HighWatermark int64
}

// Topic is a topic of a virtual cluster.
type Topic struct {
	ID         [16]byte
	ClusterID  string
	Name       string
	Configs    map[string]string // explicitly set ones only
	Partitions []Partition
	CreatedAt  time.Time
}

// clusterForUpdate locks a cluster of orgID and returns its partition
// limit and how many partitions it has. The count is a second statement:
// under READ COMMITTED it then sees what transactions that held the lock
// before us committed, where a subquery of the locking statement would
// count from the snapshot taken before the wait.
func clusterForUpdate(ctx context.Context, tx pgx.Tx, orgID, clusterID string) (limit, used int32, err error) {
	if err := tx.QueryRow(ctx, `SELECT max_partitions FROM virtual_clusters WHERE org_id = $1 AND id = $2 FOR UPDATE`,
		orgID, clusterID).Scan(&limit); err != nil {
		return 0, 0, noRows(err)
	}
	err = tx.QueryRow(ctx, `SELECT count(*)::int FROM partitions p JOIN topics t ON t.id = p.topic_id WHERE t.cluster_id = $1`,
		clusterID).Scan(&used)
	return limit, used, err
}

// CreateTopic creates a topic with n partitions in one of orgID's
// clusters, within the cluster's partition limit. The partitions start
// unassigned; the placer is woken to lead them.
func (s *Store) CreateTopic(ctx context.Context, orgID, clusterID, name string, n int32, configs map[string]string) (Topic, error) {
	var id [16]byte
	rand.Read(id[:])
	id[6] = id[6]&0x0f | 0x40 // UUIDv4, as Kafka's topic ids are
	id[8] = id[8]&0x3f | 0x80
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		limit, used, err := clusterForUpdate(ctx, tx, orgID, clusterID)
		if err != nil {
			return err
		}
		if used+n > limit {
			return fmt.Errorf("%w: the cluster has %d of %d partitions; %d more do not fit", ErrLimit, used, limit, n)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO topics (id, cluster_id, name, configs) VALUES ($1, $2, $3, $4)`,
			id, clusterID, name, marshalConfigs(configs)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO partitions (topic_id, partition) SELECT $1, generate_series(0, $2::int - 1)`, id, n); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify('eddy_placement', ''), pg_notify('eddy_metadata', '')`)
		return err
	})
	if isUniqueViolation(err) {
		return Topic{}, fmt.Errorf("%w: topic %q", ErrExists, name)
	}
	if err != nil {
		return Topic{}, fmt.Errorf("store: create topic: %w", err)
	}
	return s.Topic(ctx, orgID, clusterID, name)
}

func (s *Store) topics(ctx context.Context, orgID, clusterID, name, after string, limit int) ([]Topic, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT t.id, t.cluster_id, t.name, t.configs, t.created_at,
			coalesce(array_agg(p.partition ORDER BY p.partition) FILTER (WHERE p.id IS NOT NULL), '{}'),
			coalesce(array_agg(coalesce(p.leader_id, -1) ORDER BY p.partition) FILTER (WHERE p.id IS NOT NULL), '{}'),
			coalesce(array_agg(p.leader_epoch ORDER BY p.partition) FILTER (WHERE p.id IS NOT NULL), '{}'),
			coalesce(array_agg(p.high_watermark ORDER BY p.partition) FILTER (WHERE p.id IS NOT NULL), '{}')
		FROM topics t JOIN virtual_clusters c ON c.id = t.cluster_id
		LEFT JOIN partitions p ON p.topic_id = t.id
		WHERE c.org_id = $1 AND t.cluster_id = $2 AND ($3 = '' OR t.name = $3) AND t.name > $4
		GROUP BY t.id ORDER BY t.name LIMIT $5`, orgID, clusterID, name, after, limit)
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Topic, error) {
		var (
			t      Topic
			cfg    []byte
			ps, ls []int32
			es     []int32
			hws    []int64
		)
		if err := r.Scan(&t.ID, &t.ClusterID, &t.Name, &cfg, &t.CreatedAt, &ps, &ls, &es, &hws); err != nil {
			return t, err
		}
		var err error
		if t.Configs, err = unmarshalConfigs(cfg); err != nil {
			return t, err
		}
		t.Partitions = make([]Partition, len(ps))
		for i := range ps {
			t.Partitions[i] = Partition{Partition: ps[i], Leader: ls[i], LeaderEpoch: es[i], HighWatermark: hws[i]}
		}
		return t, nil
	})
}

// Topic returns one topic by name.
func (s *Store) Topic(ctx context.Context, orgID, clusterID, name string) (Topic, error) {
	if name == "" {
		return Topic{}, ErrNotFound
	}
	ts, err := s.topics(ctx, orgID, clusterID, name, "", 1)
	if err != nil {
		return Topic{}, fmt.Errorf("store: topic: %w", err)
	}
	if len(ts) == 0 {
		return Topic{}, ErrNotFound
	}
	return ts[0], nil
}

// Topics lists a cluster's topics by name. A cluster outside orgID lists
// nothing; callers check the cluster first to tell that from "no topics".
func (s *Store) Topics(ctx context.Context, orgID, clusterID string, p Page) ([]Topic, string, error) {
	out, err := s.topics(ctx, orgID, clusterID, "", p.After, p.limit()+1)
	if err != nil {
		return nil, "", fmt.Errorf("store: topics: %w", err)
	}
	out, next := page(out, p.limit(), func(t Topic) string { return t.Name })
	return out, next, nil
}

// UpdateTopic grows a topic to partitions (0: unchanged) within the
// cluster's limit, and replaces its explicit configs unless configs is nil.
func (s *Store) UpdateTopic(ctx context.Context, orgID, clusterID, name string, partitions int32, configs map[string]string) (Topic, error) {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		limit, used, err := clusterForUpdate(ctx, tx, orgID, clusterID)
		if err != nil {
			return err
		}
		var (
			id  [16]byte
			cur int32
		)
		// The broker's CreatePartitions locks the topic row too; count after
		// taking the lock (new statement, new snapshot), as above.
		err = tx.QueryRow(ctx, `SELECT id FROM topics WHERE cluster_id = $1 AND name = $2 FOR UPDATE`, clusterID, name).Scan(&id)
		if err != nil {
			return noRows(err)
		}
		if err := tx.QueryRow(ctx, `SELECT count(*)::int FROM partitions WHERE topic_id = $1`, id).Scan(&cur); err != nil {
			return err
		}
		if partitions != 0 && partitions != cur {
			if partitions < cur {
				return fmt.Errorf("%w: topic %s has %d partitions; partitions can only grow", ErrInvalid, name, cur)
			}
			if used+partitions-cur > limit {
				return fmt.Errorf("%w: the cluster has %d of %d partitions; %d more do not fit", ErrLimit, used, limit, partitions-cur)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO partitions (topic_id, partition) SELECT $1, generate_series($2::int, $3::int - 1)`,
				id, cur, partitions); err != nil {
				return err
			}
		}
		if configs != nil {
			if _, err := tx.Exec(ctx, `UPDATE topics SET configs = $2 WHERE id = $1`, id, marshalConfigs(configs)); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify('eddy_placement', ''), pg_notify('eddy_metadata', '')`)
		return err
	})
	if err != nil {
		return Topic{}, fmt.Errorf("store: update topic: %w", err)
	}
	return s.Topic(ctx, orgID, clusterID, name)
}

// DeleteTopic deletes a topic with its partitions and index rows; objects
// are left to garbage collection.
func (s *Store) DeleteTopic(ctx context.Context, orgID, clusterID, name string) error {
	tag, err := s.pool.Exec(ctx, `
		WITH d AS (DELETE FROM topics t USING virtual_clusters c
			WHERE c.id = t.cluster_id AND c.org_id = $1 AND t.cluster_id = $2 AND t.name = $3 RETURNING 1)
		SELECT pg_notify('eddy_metadata', '') FROM d`, orgID, clusterID, name)
	if err != nil {
		return fmt.Errorf("store: delete topic: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}
