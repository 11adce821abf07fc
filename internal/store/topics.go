package store

// Topics, created and changed over REST (api) and over the Kafka API
// (broker) through the same functions, so both keep to one partition
// limit and one lock order: a cluster's row, then its topic's.

import (
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/eddy-streams/eddy/internal/clusterconfig"
	"github.com/eddy-streams/eddy/internal/topicconfig"
)

// Topic is a topic of a virtual cluster. Snapshot leaves CreatedAt zero.
type Topic struct {
	ID         [16]byte
	ClusterID  string
	Name       string
	Configs    map[string]string // explicitly set ones only
	Partitions []Partition       // ordered by partition number
	CreatedAt  time.Time
}

// Partition is one partition of a topic and its placement. LeaderID is -1
// while the partition waits for placement; MovingTo is the broker the
// control plane asked the leader to hand the partition to (a graceful
// move, handoff.go), -1 when none. Snapshot leaves HighWatermark zero: it
// moves with every flush, and the leader holds the current one.
type Partition struct {
	ID            int64
	Partition     int32
	LeaderID      int32
	LeaderEpoch   int32
	MovingTo      int32
	HighWatermark int64
}

// checkPartitionLimit fails with ErrLimit if n more partitions would take
// cluster clusterID past its effective max_partitions (newTopic: or one
// more topic past its effective max_topics). The caller holds the
// cluster's row lock (lockCluster); the count is a statement of its own
// after the lock, so under READ COMMITTED it sees what the previous
// holder of the lock committed, where a subquery of the locking statement
// would count from the snapshot taken before the wait.
func checkPartitionLimit(ctx context.Context, tx pgx.Tx, clusterID string, n int32, newTopic bool) error {
	var limit, used, topicLimit, topics int32
	err := tx.QueryRow(ctx, `
		SELECT least(c.max_partitions, p.max_partitions),
			(SELECT count(*)::int FROM partitions p JOIN topics t ON t.id = p.topic_id WHERE t.cluster_id = c.id),
			least(c.max_topics, p.max_topics),
			(SELECT count(*)::int FROM topics t WHERE t.cluster_id = c.id)
		FROM virtual_clusters c`+withPlan+` WHERE c.id = $1`, clusterID).Scan(&limit, &used, &topicLimit, &topics)
	if err != nil {
		return fmt.Errorf("store: partition limit: %w", err)
	}
	if newTopic && topics >= topicLimit {
		return fmt.Errorf("%w: the cluster has %d of its %d topics", ErrLimit, topics, topicLimit)
	}
	if used+n > limit {
		return fmt.Errorf("%w: the cluster has %d of its %d partitions; %d more do not fit", ErrLimit, used, limit, n)
	}
	return nil
}

// CreateTopic creates a topic with n partitions in cluster clusterID of
// orgID (AnyOrg: any), within the cluster's partition limit, and returns
// its id and the configs it was stored with: configs over the cluster's
// topic defaults (clusterconfig.NewTopicDefaults), the one place they are
// applied however the topic is created. Past the cluster's topic limit, or
// with retention configs above its retention limits, it is ErrLimit. The
// partitions start unassigned; the placer is woken (NOTIFY) to lead them.
// A taken name is ErrExists, a cluster outside orgID ErrNotFound.
func (s *Store) CreateTopic(ctx context.Context, orgID, clusterID, name string, n int32, configs map[string]string) ([16]byte, map[string]string, error) {
	var id [16]byte
	rand.Read(id[:])
	id[6] = id[6]&0x0f | 0x40 // UUIDv4, as Kafka's topic ids are
	id[8] = id[8]&0x3f | 0x80
	if topicconfig.Internal(name) {
		// The brokers answer for it in every cluster.
		return id, nil, fmt.Errorf("%w: %s is an internal topic", ErrExists, name)
	}
	var stored map[string]string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The lock and the defaults in one statement: the defaults read
		// are the ones no concurrent change of the cluster can replace
		// before the topic is in.
		cc, err := readClusterConfigs(ctx, tx, orgID, clusterID, true)
		if err != nil {
			return fmt.Errorf("store: cluster %s: %w", clusterID, err)
		}
		stored = clusterconfig.NewTopicDefaults(cc.broker, cc.topic)
		maps.Copy(stored, configs)
		if err := checkPartitionLimit(ctx, tx, clusterID, n, true); err != nil {
			return err
		}
		if err := checkTopicConfigs(ctx, tx, clusterID, stored); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO topics (id, cluster_id, name, configs) VALUES ($1, $2, $3, $4)`,
			id, clusterID, name, marshalConfigs(stored)); err != nil {
			if isUniqueViolation(err) {
				return fmt.Errorf("%w: topic %q", ErrExists, name)
			}
			return fmt.Errorf("store: create topic %s: %w", name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO partitions (topic_id, partition) SELECT $1, generate_series(0, $2::int - 1)`, id, n); err != nil {
			return fmt.Errorf("store: create topic %s partitions: %w", name, err)
		}
		return notify(ctx, tx, "eddy_placement", "eddy_metadata")
	})
	if err != nil {
		return id, nil, err
	}
	return id, stored, nil
}

// lockTopic locks cluster clusterID of orgID (AnyOrg: any) and then its
// topic name, and returns the topic's id and partition count, counted
// after the locks.
func lockTopic(ctx context.Context, tx pgx.Tx, orgID, clusterID, name string) (id [16]byte, n int32, err error) {
	if err := lockCluster(ctx, tx, orgID, clusterID); err != nil {
		return id, 0, err
	}
	if err := tx.QueryRow(ctx, `SELECT id FROM topics WHERE cluster_id = $1 AND name = $2 FOR UPDATE`, clusterID, name).Scan(&id); err != nil {
		return id, 0, noRows(err)
	}
	err = tx.QueryRow(ctx, `SELECT count(*)::int FROM partitions WHERE topic_id = $1`, id).Scan(&n)
	return id, n, err
}

// growTopic adds partitions cur..total-1 to topic id of cluster clusterID,
// within the cluster's partition limit; the caller holds the locks of
// lockTopic. Partitions only grow: total below cur is ErrInvalid.
func growTopic(ctx context.Context, tx pgx.Tx, clusterID, name string, id [16]byte, cur, total int32) error {
	if total < cur {
		return fmt.Errorf("%w: topic %s has %d partitions; partitions can only grow", ErrInvalid, name, cur)
	}
	if err := checkPartitionLimit(ctx, tx, clusterID, total-cur, false); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO partitions (topic_id, partition) SELECT $1, generate_series($2::int, $3::int - 1)`,
		id, cur, total); err != nil {
		return fmt.Errorf("store: add partitions to %s: %w", name, err)
	}
	return nil
}

// setTopicConfigs replaces the explicit configs of topic name of
// clusterID and tells the brokers.
func setTopicConfigs(ctx context.Context, q querier, clusterID, name string, configs map[string]string) error {
	tag, err := q.Exec(ctx, `
		WITH u AS (UPDATE topics SET configs = $3 WHERE cluster_id = $1 AND name = $2 RETURNING 1)
		SELECT pg_notify('eddy_metadata', '') FROM u`, clusterID, name, marshalConfigs(configs))
	if err != nil {
		return fmt.Errorf("store: set configs %s: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// UpdateTopic grows a topic of a cluster of orgID to partitions (0 or its
// current count: unchanged) within the cluster's limit, and replaces its
// explicit configs unless configs is nil (REST's PATCH).
func (s *Store) UpdateTopic(ctx context.Context, orgID, clusterID, name string, partitions int32, configs map[string]string) (Topic, error) {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		id, cur, err := lockTopic(ctx, tx, orgID, clusterID, name)
		if err != nil {
			return err
		}
		if partitions != 0 && partitions != cur {
			if err := growTopic(ctx, tx, clusterID, name, id, cur, partitions); err != nil {
				return err
			}
		}
		if configs != nil {
			if err := checkTopicConfigs(ctx, tx, clusterID, configs); err != nil {
				return err
			}
			if err := setTopicConfigs(ctx, tx, clusterID, name, configs); err != nil {
				return err
			}
		}
		return notify(ctx, tx, "eddy_placement", "eddy_metadata")
	})
	if err != nil {
		return Topic{}, fmt.Errorf("store: update topic: %w", err)
	}
	return s.Topic(ctx, orgID, clusterID, name)
}

// CreatePartitions grows a topic to total partitions (the Kafka API's
// CreatePartitions, whose total must exceed the current count: ErrInvalid
// otherwise).
func (s *Store) CreatePartitions(ctx context.Context, clusterID, name string, total int32) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		id, cur, err := lockTopic(ctx, tx, AnyOrg, clusterID, name)
		if err != nil {
			return fmt.Errorf("store: create partitions %s: %w", name, err)
		}
		if total == cur {
			return fmt.Errorf("%w: topic %s has %d partitions; the new count must be larger", ErrInvalid, name, cur)
		}
		if err := growTopic(ctx, tx, clusterID, name, id, cur, total); err != nil {
			return err
		}
		return notify(ctx, tx, "eddy_placement", "eddy_metadata")
	})
	return err
}

// SetTopicConfigs replaces a topic's explicitly set configs.
// Retention above the cluster's effective retention limits is ErrLimit.
func (s *Store) SetTopicConfigs(ctx context.Context, clusterID, name string, configs map[string]string) error {
	if err := checkTopicConfigs(ctx, s.pool, clusterID, configs); err != nil {
		return err
	}
	return setTopicConfigs(ctx, s.pool, clusterID, name, configs)
}

// TopicConfigs reads a topic's explicit configs straight from Postgres, so
// DescribeConfigs shows an alteration made through any broker at once.
func (s *Store) TopicConfigs(ctx context.Context, clusterID, name string) (map[string]string, error) {
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT configs FROM topics WHERE cluster_id = $1 AND name = $2`, clusterID, name).Scan(&raw)
	if err != nil {
		return nil, fmt.Errorf("store: topic configs %s: %w", name, noRows(err))
	}
	out, err := unmarshalConfigs(raw)
	if err != nil {
		return nil, fmt.Errorf("store: topic configs %s: %w", name, err)
	}
	return out, nil
}

func (s *Store) topics(ctx context.Context, orgID, clusterID, name, after string, limit int) ([]Topic, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT t.id, t.cluster_id, t.name, t.configs, t.created_at,
			coalesce(array_agg(p.id ORDER BY p.partition) FILTER (WHERE p.id IS NOT NULL), '{}'),
			coalesce(array_agg(p.partition ORDER BY p.partition) FILTER (WHERE p.id IS NOT NULL), '{}'),
			coalesce(array_agg(coalesce(p.leader_id, -1) ORDER BY p.partition) FILTER (WHERE p.id IS NOT NULL), '{}'),
			coalesce(array_agg(p.leader_epoch ORDER BY p.partition) FILTER (WHERE p.id IS NOT NULL), '{}'),
			coalesce(array_agg(coalesce(p.moving_to, -1) ORDER BY p.partition) FILTER (WHERE p.id IS NOT NULL), '{}'),
			coalesce(array_agg(p.high_watermark ORDER BY p.partition) FILTER (WHERE p.id IS NOT NULL), '{}')
		FROM topics t JOIN virtual_clusters c ON c.id = t.cluster_id
		LEFT JOIN partitions p ON p.topic_id = t.id
		WHERE c.org_id = $1 AND t.cluster_id = $2 AND ($3 = '' OR t.name = $3) AND t.name > $4
		GROUP BY t.id ORDER BY t.name LIMIT $5`, orgID, clusterID, name, after, limit)
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Topic, error) {
		var (
			t          Topic
			cfg        []byte
			ids, hws   []int64
			ps, ls, es []int32
			ms         []int32
		)
		if err := r.Scan(&t.ID, &t.ClusterID, &t.Name, &cfg, &t.CreatedAt, &ids, &ps, &ls, &es, &ms, &hws); err != nil {
			return t, err
		}
		var err error
		if t.Configs, err = unmarshalConfigs(cfg); err != nil {
			return t, err
		}
		t.Partitions = make([]Partition, len(ps))
		for i := range ps {
			t.Partitions[i] = Partition{ID: ids[i], Partition: ps[i], LeaderID: ls[i], LeaderEpoch: es[i], MovingTo: ms[i], HighWatermark: hws[i]}
		}
		return t, nil
	})
}

// Topic returns one topic of a cluster of orgID by name.
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

// DeleteTopic deletes a topic of a cluster of orgID (AnyOrg: any) with its
// partitions and index rows; the objects they pointed to are left for
// garbage collection.
func (s *Store) DeleteTopic(ctx context.Context, orgID, clusterID, name string) error {
	tag, err := s.pool.Exec(ctx, `
		WITH d AS (DELETE FROM topics t USING virtual_clusters c
			WHERE c.id = t.cluster_id AND ($1 = '*' OR c.org_id = $1) AND t.cluster_id = $2 AND t.name = $3 RETURNING 1)
		SELECT pg_notify('eddy_metadata', '') FROM d`, orgID, clusterID, name)
	if err != nil {
		return fmt.Errorf("store: delete topic %s: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// AdvanceLogStart moves a partition's log start offset forward to offset
// (DeleteRecords); offset -1 means the high watermark. It never moves it
// backwards and fails with ErrInvalid above the high watermark. Index rows
// and inline rows wholly below the new start are deleted, and so are the aborted
// transactions whose marker is below it. It returns the new start.
func (s *Store) AdvanceLogStart(ctx context.Context, partitionID, offset int64) (int64, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: delete records: %w", err)
	}
	defer tx.Rollback(ctx)
	var hw, start int64
	if err := tx.QueryRow(ctx, `SELECT high_watermark, log_start_offset FROM partitions WHERE id = $1 FOR UPDATE`, partitionID).Scan(&hw, &start); err != nil {
		return 0, fmt.Errorf("store: delete records: %w", noRows(err))
	}
	if offset == -1 {
		offset = hw
	}
	if offset < 0 || offset > hw {
		return 0, fmt.Errorf("%w: offset %d is outside [0, %d]", ErrInvalid, offset, hw)
	}
	if offset <= start {
		return start, tx.Commit(ctx)
	}
	if _, err := tx.Exec(ctx, `UPDATE partitions SET log_start_offset = $2 WHERE id = $1`, partitionID, offset); err != nil {
		return 0, fmt.Errorf("store: delete records: %w", err)
	}
	if err := dropInlineBelow(ctx, tx, partitionID, offset); err != nil {
		return 0, fmt.Errorf("store: delete records: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM segments WHERE partition_id = $1 AND end_offset <= $2`, partitionID, offset); err != nil {
		return 0, fmt.Errorf("store: delete records: %w", err)
	}
	if err := dropAbortedBelow(ctx, tx, partitionID, offset); err != nil {
		return 0, fmt.Errorf("store: delete records: %w", err)
	}
	return offset, tx.Commit(ctx)
}
