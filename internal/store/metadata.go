package store

import (
	"context"
	"encoding/json"
	"fmt"
)

// Broker is a live broker session.
type Broker struct {
	ID       int32
	Host     string
	Port     int32
	Rack     string
	Draining bool
}

// Cluster is a virtual cluster's data-plane settings.
type Cluster struct {
	ID                string
	Org               string // "" for clusters outside any organisation (development)
	Name              string
	AutoCreateTopics  bool
	DefaultPartitions int32
}

// Topic is a topic with its explicitly set configs.
type Topic struct {
	ID         [16]byte
	ClusterID  string
	Name       string
	Configs    map[string]string
	Partitions []Partition // ordered by partition number
}

// Partition is a partition's placement. LeaderID is -1 while unassigned;
// MovingTo is the broker the control plane asked the leader to hand the
// partition to (a graceful move, handoff.go), -1 when none.
type Partition struct {
	ID          int64
	Partition   int32
	LeaderID    int32
	LeaderEpoch int32
	MovingTo    int32
}

// Slot is a group-coordinator slot's placement.
type Slot struct {
	Slot        int32
	LeaderID    int32
	LeaderEpoch int32
}

// Metadata is a consistent snapshot of everything a broker routes by.
type Metadata struct {
	Brokers  []Broker
	Clusters map[string]Cluster
	Topics   []Topic
	Slots    []Slot
}

// Snapshot reads the whole routing state in one repeatable-read
// transaction, so brokers, leaders and topics agree with each other.
func (s *Store) Snapshot(ctx context.Context) (*Metadata, error) {
	tx, err := s.pool.BeginTx(ctx, txRepeatableReadRO)
	if err != nil {
		return nil, fmt.Errorf("store: snapshot: %w", err)
	}
	defer tx.Rollback(ctx)

	md := &Metadata{Clusters: map[string]Cluster{}}
	rows, err := tx.Query(ctx, `
		SELECT id, host, port, coalesce(rack, ''), draining FROM brokers
		WHERE expires_at > now() ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: snapshot brokers: %w", err)
	}
	for rows.Next() {
		var b Broker
		if err := rows.Scan(&b.ID, &b.Host, &b.Port, &b.Rack, &b.Draining); err != nil {
			return nil, fmt.Errorf("store: snapshot brokers: %w", err)
		}
		md.Brokers = append(md.Brokers, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: snapshot brokers: %w", err)
	}

	rows, err = tx.Query(ctx, `SELECT id, coalesce(org_id, ''), name, auto_create_topics, default_partitions FROM virtual_clusters`)
	if err != nil {
		return nil, fmt.Errorf("store: snapshot clusters: %w", err)
	}
	for rows.Next() {
		var c Cluster
		if err := rows.Scan(&c.ID, &c.Org, &c.Name, &c.AutoCreateTopics, &c.DefaultPartitions); err != nil {
			return nil, fmt.Errorf("store: snapshot clusters: %w", err)
		}
		md.Clusters[c.ID] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: snapshot clusters: %w", err)
	}

	rows, err = tx.Query(ctx, `
		SELECT t.id, t.cluster_id, t.name, t.configs, p.id, p.partition, coalesce(p.leader_id, -1), p.leader_epoch,
			coalesce(p.moving_to, -1)
		FROM topics t JOIN partitions p ON p.topic_id = t.id
		ORDER BY t.cluster_id, t.name, p.partition`)
	if err != nil {
		return nil, fmt.Errorf("store: snapshot topics: %w", err)
	}
	for rows.Next() {
		var (
			id      [16]byte
			cluster string
			name    string
			configs []byte
			p       Partition
		)
		if err := rows.Scan(&id, &cluster, &name, &configs, &p.ID, &p.Partition, &p.LeaderID, &p.LeaderEpoch, &p.MovingTo); err != nil {
			return nil, fmt.Errorf("store: snapshot topics: %w", err)
		}
		if n := len(md.Topics); n == 0 || md.Topics[n-1].ID != id {
			t := Topic{ID: id, ClusterID: cluster, Name: name}
			if err := json.Unmarshal(configs, &t.Configs); err != nil {
				return nil, fmt.Errorf("store: topic %s configs: %w", name, err)
			}
			md.Topics = append(md.Topics, t)
		}
		t := &md.Topics[len(md.Topics)-1]
		t.Partitions = append(t.Partitions, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: snapshot topics: %w", err)
	}

	rows, err = tx.Query(ctx, `SELECT slot, coalesce(leader_id, -1), leader_epoch FROM coordinator_slots ORDER BY slot`)
	if err != nil {
		return nil, fmt.Errorf("store: snapshot slots: %w", err)
	}
	for rows.Next() {
		var sl Slot
		if err := rows.Scan(&sl.Slot, &sl.LeaderID, &sl.LeaderEpoch); err != nil {
			return nil, fmt.Errorf("store: snapshot slots: %w", err)
		}
		md.Slots = append(md.Slots, sl)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: snapshot slots: %w", err)
	}
	return md, tx.Commit(ctx)
}

// EnsureCluster creates the virtual cluster id if it does not exist. The
// broker uses it for the cluster of its anonymous development listener.
func (s *Store) EnsureCluster(ctx context.Context, id, name string) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO virtual_clusters (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, id, name)
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
