package store

import (
	"context"
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
	if md.Brokers, err = liveBrokers(ctx, tx); err != nil {
		return nil, fmt.Errorf("store: snapshot brokers: %w", err)
	}

	rows, err := tx.Query(ctx, `SELECT id, coalesce(org_id, ''), name, broker_configs, allowed_cidrs FROM virtual_clusters`)
	if err != nil {
		return nil, fmt.Errorf("store: snapshot clusters: %w", err)
	}
	for rows.Next() {
		var (
			c   Cluster
			col []byte
		)
		if err := rows.Scan(&c.ID, &c.OrgID, &c.Name, &col, &c.AllowedCIDRs); err != nil {
			return nil, fmt.Errorf("store: snapshot clusters: %w", err)
		}
		if err := c.setBrokerConfigs(col); err != nil {
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
			var err error
			if t.Configs, err = unmarshalConfigs(configs); err != nil {
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

// LiveBrokers reads the live brokers as Snapshot does, and nothing else:
// a few rows, whatever the number of partitions. Brokers poll it to notice
// a session that expired (which no NOTIFY announces) without re-reading
// the whole routing state.
func (s *Store) LiveBrokers(ctx context.Context) ([]Broker, error) {
	bs, err := liveBrokers(ctx, s.pool)
	if err != nil {
		return nil, fmt.Errorf("store: live brokers: %w", err)
	}
	return bs, nil
}

func liveBrokers(ctx context.Context, q querier) ([]Broker, error) {
	rows, err := q.Query(ctx, `
		SELECT id, host, port, coalesce(rack, ''), draining FROM brokers
		WHERE expires_at > now() ORDER BY id`)
	if err != nil {
		return nil, err
	}
	var out []Broker
	for rows.Next() {
		var b Broker
		if err := rows.Scan(&b.ID, &b.Host, &b.Port, &b.Rack, &b.Draining); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}
