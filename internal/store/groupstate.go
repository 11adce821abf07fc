package store

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"
)

// GroupStateWrite is one group's coordinator state to write: State
// replaces the stored state, nil State deletes it. Fence is the slot fence
// of the group, as for offset commits.
type GroupStateWrite struct {
	ClusterID, Group string
	Fence            SlotFence
	State            []byte
}

// GroupState is a group's stored coordinator state.
type GroupState struct {
	ClusterID, Group string
	State            []byte
}

// SaveGroupStates writes rows in one statement. Each row is fenced like
// CommitOffsets: it is written only if its slot is still led by its
// broker at its leader epoch (the slot rows are share-locked for the
// statement, so a slot move waits for it), and refused[i] reports the rows
// that were not. Rows of clusters that no longer exist are dropped, and so
// are rows whose cluster or group id Postgres text cannot hold (see
// storable): those groups are not persisted, rather than fail the batch.
// An error means nothing was written.
func (s *Store) SaveGroupStates(ctx context.Context, rows []GroupStateWrite) (refused []bool, err error) {
	refused = make([]bool, len(rows))
	if len(rows) == 0 {
		return refused, nil
	}
	clusters := make([]string, len(rows))
	groups := make([]string, len(rows))
	slots := make([]int32, len(rows))
	brokers := make([]int32, len(rows))
	epochs := make([]int32, len(rows))
	states := make([][]byte, len(rows))
	for i, r := range rows {
		clusters[i], groups[i] = r.ClusterID, r.Group
		slots[i], brokers[i], epochs[i] = r.Fence.Slot, r.Fence.BrokerID, r.Fence.LeaderEpoch
		states[i] = r.State
		if !storableText(r.ClusterID) || !storableText(r.Group) {
			// Dropped: a placeholder row that no slot matches.
			clusters[i], groups[i], slots[i] = "", "", -1
			continue
		}
		refused[i] = true
	}
	// As in CommitOffsetsBatch: fence share-locks the slot rows whose fence
	// holds (in slot order, so a slot move waits for us), live key-share-
	// locks the clusters that exist (a deletion waits, or has happened and
	// only its rows drop out, where a foreign-key error would fail the
	// batch); ok holds the rows that pass the fence, and the final SELECT
	// names them (1-based positions).
	q, err := s.pool.Query(ctx, `
		WITH r AS MATERIALIZED (
			SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::int[], $6::bytea[])
				WITH ORDINALITY AS r(cluster_id, group_id, slot, leader_id, leader_epoch, state, i)
		), fence AS MATERIALIZED (
			SELECT slot, leader_id, leader_epoch FROM coordinator_slots
			WHERE (slot, leader_id, leader_epoch) IN (SELECT slot, leader_id, leader_epoch FROM r)
			ORDER BY slot
			FOR SHARE
		), live AS MATERIALIZED (
			SELECT id FROM virtual_clusters
			WHERE id IN (SELECT cluster_id FROM r)
			ORDER BY id
			FOR KEY SHARE
		), ok AS MATERIALIZED (
			SELECT r.* FROM r JOIN fence f USING (slot, leader_id, leader_epoch)
		), up AS (
			INSERT INTO group_states (cluster_id, group_id, slot, state)
			SELECT ok.cluster_id, ok.group_id, ok.slot, ok.state FROM ok
			JOIN live l ON l.id = ok.cluster_id
			WHERE ok.state IS NOT NULL
			ORDER BY ok.cluster_id, ok.group_id
			ON CONFLICT (cluster_id, group_id) DO UPDATE SET
				slot = EXCLUDED.slot, state = EXCLUDED.state, updated_at = now()
		), del AS (
			DELETE FROM group_states g USING ok
			WHERE ok.state IS NULL AND g.cluster_id = ok.cluster_id AND g.group_id = ok.group_id
		)
		SELECT i FROM ok`,
		clusters, groups, slots, brokers, epochs, states)
	if err != nil {
		return nil, fmt.Errorf("store: save group states: %w", err)
	}
	defer q.Close()
	for q.Next() {
		var i int64
		if err := q.Scan(&i); err != nil {
			return nil, fmt.Errorf("store: save group states: %w", err)
		}
		refused[i-1] = false
	}
	if err := q.Err(); err != nil {
		return nil, fmt.Errorf("store: save group states: %w", err)
	}
	return refused, nil
}

// LoadGroupStates returns the stored states of the groups of the given
// coordinator slots.
func (s *Store) LoadGroupStates(ctx context.Context, slots []int32) ([]GroupState, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT cluster_id, group_id, state FROM group_states WHERE slot = ANY($1)`, slots)
	if err != nil {
		return nil, fmt.Errorf("store: load group states: %w", err)
	}
	defer rows.Close()
	var out []GroupState
	for rows.Next() {
		var g GroupState
		if err := rows.Scan(&g.ClusterID, &g.Group, &g.State); err != nil {
			return nil, fmt.Errorf("store: load group states: %w", err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: load group states: %w", err)
	}
	return out, nil
}

// storableText reports whether Postgres text can hold s: valid UTF-8
// without NUL bytes. Kafka strings are arbitrary bytes.
func storableText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}
