package store

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
)

// CreateTopic creates a topic with n partitions (left unassigned for the
// placer, which is woken through NOTIFY) and returns its id.
func (s *Store) CreateTopic(ctx context.Context, clusterID, name string, n int32, configs map[string]string) ([16]byte, error) {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return id, err
	}
	id[6] = id[6]&0x0f | 0x40 // UUIDv4, as Kafka's topic ids are
	id[8] = id[8]&0x3f | 0x80
	if configs == nil {
		configs = map[string]string{}
	}
	cfg, err := json.Marshal(configs)
	if err != nil {
		return id, err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return id, fmt.Errorf("store: create topic: %w", err)
	}
	defer tx.Rollback(ctx)
	if err := checkPartitionLimit(ctx, tx, clusterID, n); err != nil {
		return id, err
	}
	_, err = tx.Exec(ctx, `INSERT INTO topics (id, cluster_id, name, configs) VALUES ($1, $2, $3, $4)`, id, clusterID, name, cfg)
	if isUniqueViolation(err) {
		return id, ErrExists
	}
	if err != nil {
		return id, fmt.Errorf("store: create topic %s: %w", name, err)
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO partitions (topic_id, partition) SELECT $1, generate_series(0, $2::int - 1)`, id, n); err != nil {
		return id, fmt.Errorf("store: create topic %s partitions: %w", name, err)
	}
	if err := notify(ctx, tx, "eddy_placement", "eddy_metadata"); err != nil {
		return id, err
	}
	return id, tx.Commit(ctx)
}

// DeleteTopic deletes a topic, its partitions and their index rows. The
// objects they pointed to are left for garbage collection.
func (s *Store) DeleteTopic(ctx context.Context, clusterID, name string) error {
	tag, err := s.pool.Exec(ctx, `
		WITH d AS (DELETE FROM topics WHERE cluster_id = $1 AND name = $2 RETURNING 1)
		SELECT pg_notify('eddy_metadata', '') FROM d`, clusterID, name)
	if err != nil {
		return fmt.Errorf("store: delete topic %s: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// CreatePartitions grows a topic to total partitions. It fails with
// ErrInvalid if the topic already has total or more.
func (s *Store) CreatePartitions(ctx context.Context, clusterID, name string, total int32) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("store: create partitions: %w", err)
	}
	defer tx.Rollback(ctx)
	// The cluster row first, as the control plane's UpdateTopic locks
	// (cluster, then topic), so the two cannot deadlock.
	if err := lockCluster(ctx, tx, clusterID); err != nil {
		return fmt.Errorf("store: create partitions %s: %w", name, err)
	}
	var (
		id  [16]byte
		cur int32
	)
	err = tx.QueryRow(ctx, `
		SELECT t.id, (SELECT count(*) FROM partitions p WHERE p.topic_id = t.id)
		FROM topics t WHERE t.cluster_id = $1 AND t.name = $2 FOR UPDATE`, clusterID, name).Scan(&id, &cur)
	if err != nil {
		return fmt.Errorf("store: create partitions %s: %w", name, notFound(err))
	}
	if total <= cur {
		return fmt.Errorf("%w: topic %s has %d partitions; the new count must be larger", ErrInvalid, name, cur)
	}
	if err := checkPartitionLimit(ctx, tx, clusterID, total-cur); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO partitions (topic_id, partition) SELECT $1, generate_series($2::int, $3::int - 1)`, id, cur, total); err != nil {
		return fmt.Errorf("store: create partitions %s: %w", name, err)
	}
	if err := notify(ctx, tx, "eddy_placement", "eddy_metadata"); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// SetTopicConfigs replaces a topic's explicitly set configs.
func (s *Store) SetTopicConfigs(ctx context.Context, clusterID, name string, configs map[string]string) error {
	if configs == nil {
		configs = map[string]string{}
	}
	cfg, err := json.Marshal(configs)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `
		WITH u AS (UPDATE topics SET configs = $3 WHERE cluster_id = $1 AND name = $2 RETURNING 1)
		SELECT pg_notify('eddy_metadata', '') FROM u`, clusterID, name, cfg)
	if err != nil {
		return fmt.Errorf("store: set configs %s: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// AdvanceLogStart moves a partition's log start offset forward to offset
// (DeleteRecords); offset -1 means the high watermark. It never moves it
// backwards and fails with ErrInvalid above the high watermark. Index rows
// wholly below the new start are deleted. It returns the new start.
func (s *Store) AdvanceLogStart(ctx context.Context, partitionID, offset int64) (int64, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: delete records: %w", err)
	}
	defer tx.Rollback(ctx)
	var hw, start int64
	if err := tx.QueryRow(ctx, `SELECT high_watermark, log_start_offset FROM partitions WHERE id = $1 FOR UPDATE`, partitionID).Scan(&hw, &start); err != nil {
		return 0, fmt.Errorf("store: delete records: %w", notFound(err))
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
	if _, err := tx.Exec(ctx, `DELETE FROM segments WHERE partition_id = $1 AND end_offset <= $2`, partitionID, offset); err != nil {
		return 0, fmt.Errorf("store: delete records: %w", err)
	}
	return offset, tx.Commit(ctx)
}

// NextProducerID allocates a producer id (InitProducerId).
func (s *Store) NextProducerID(ctx context.Context) (int64, error) {
	var id int64
	if err := s.pool.QueryRow(ctx, `SELECT nextval('producer_ids')`).Scan(&id); err != nil {
		return 0, fmt.Errorf("store: producer id: %w", err)
	}
	return id, nil
}

// TopicConfigs reads a topic's explicit configs straight from Postgres, so
// DescribeConfigs shows an alteration made through any broker at once.
func (s *Store) TopicConfigs(ctx context.Context, clusterID, name string) (map[string]string, error) {
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT configs FROM topics WHERE cluster_id = $1 AND name = $2`, clusterID, name).Scan(&raw)
	if err != nil {
		return nil, fmt.Errorf("store: topic configs %s: %w", name, notFound(err))
	}
	var out map[string]string
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("store: topic configs %s: %w", name, err)
	}
	return out, nil
}
