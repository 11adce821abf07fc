package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// GroupOffset is a committed consumer-group offset. Reads also fill
// HighWatermark, its partition's high watermark (-1 when the topic no
// longer exists), and CommittedAt; commits ignore both.
type GroupOffset struct {
	Topic         string
	Partition     int32
	Offset        int64
	LeaderEpoch   int32
	Metadata      string
	HighWatermark int64
	CommittedAt   time.Time
}

// Lag is how far the group's consumers are behind on this partition
// (high watermark - committed, never below zero).
func (o GroupOffset) Lag() int64 {
	if o.HighWatermark < 0 {
		return 0
	}
	return max(o.HighWatermark-o.Offset, 0)
}

// SlotFence names the coordinator slot a commit is made under: the slot
// and the leader epoch at which the committing broker owns it.
type SlotFence struct {
	Slot        int32
	BrokerID    int32
	LeaderEpoch int32
}

// CommitOffsets upserts a group's offsets in one statement, fenced by the
// coordinator slot: the write happens only if the slot is still led by
// fence.BrokerID at fence.LeaderEpoch, and the slot row is share-locked for
// the statement, so a slot move either waits for the commit or makes it
// fail with ErrFenced. A coordinator that lost the slot can therefore never
// write after the new coordinator has loaded the group's offsets. It is
// CommitOffsetsBatch with one commit; brokers batch commits of many
// requests instead (data-plane/broker/commitbatch.go).
func (s *Store) CommitOffsets(ctx context.Context, clusterID, group string, fence SlotFence, offs []GroupOffset) error {
	outcomes, err := s.CommitOffsetsBatch(ctx, []OffsetCommit{{ClusterID: clusterID, Group: group, Fence: fence, Offsets: offs}})
	if err != nil {
		return err
	}
	return outcomes[0]
}

// OffsetCommit is one group's offset commit in a CommitOffsetsBatch: the
// same arguments CommitOffsets takes.
type OffsetCommit struct {
	ClusterID string
	Group     string
	Fence     SlotFence
	Offsets   []GroupOffset
}

// CommitOffsetsBatch writes the commits of many groups (of any clusters
// and slots) in one statement, each fenced exactly as CommitOffsets fences
// it: a commit's offsets are written only if its slot is still led by
// Fence.BrokerID at Fence.LeaderEpoch, and every slot row named is
// share-locked for the statement, so a slot move either waits for the
// batch or fences the commits made under the old epoch.
//
// It returns one outcome per commit, in order: nil when written, else an
// error wrapping ErrFenced (slot moved), ErrNotFound (the virtual cluster
// was deleted) or ErrInvalid (a name or metadata string that is not valid
// UTF-8 or holds a NUL byte, which Postgres text cannot store). Those
// commits write nothing and leave the others of the batch unaffected. A
// non-nil error means the statement failed and no commit was written.
//
// Offsets of the same group and partition named more than once in the
// batch are applied in batch order: the last one wins.
func (s *Store) CommitOffsetsBatch(ctx context.Context, commits []OffsetCommit) ([]error, error) {
	outcomes := make([]error, len(commits))
	// Per commit (index n, 1-based as WITH ORDINALITY counts) ...
	var (
		clusters, groups       []string
		slots, leaders, epochs []int32
		ns                     []int32
	)
	// ... and per offset row, naming its commit by n.
	var (
		rowN, parts, rowEpochs []int32
		topics, metas          []string
		offsets                []int64
	)
	for i, c := range commits {
		if !storable(c) {
			outcomes[i] = fmt.Errorf("store: commit offsets for group %q: a name or metadata is not valid UTF-8 text: %w", c.Group, ErrInvalid)
			continue
		}
		if len(c.Offsets) == 0 {
			continue
		}
		n := int32(len(clusters) + 1)
		ns = append(ns, int32(i))
		clusters, groups = append(clusters, c.ClusterID), append(groups, c.Group)
		slots, leaders, epochs = append(slots, c.Fence.Slot), append(leaders, c.Fence.BrokerID), append(epochs, c.Fence.LeaderEpoch)
		for _, o := range c.Offsets {
			rowN, topics, parts = append(rowN, n), append(topics, o.Topic), append(parts, o.Partition)
			offsets, rowEpochs, metas = append(offsets, o.Offset), append(rowEpochs, o.LeaderEpoch), append(metas, o.Metadata)
		}
	}
	if len(clusters) == 0 {
		return outcomes, nil
	}
	// The CTEs are MATERIALIZED so each runs (and locks) once.
	//   commits: one row per commit with its fence.
	//   fence:   the fences that still hold. FOR SHARE makes a concurrent
	//            slot move (an UPDATE of the row) wait for this statement;
	//            a move that committed first fails the re-check Postgres
	//            does on the locked row, so the row drops out. Locked in
	//            slot order, to keep lock order stable across statements.
	//   live:    clusters that still exist, key-share-locked as the
	//            foreign key check would: a cluster deletion waits for us,
	//            or has happened and only that cluster's commits are
	//            refused (an FK violation would fail the whole batch).
	//   ins:     the offsets of the commits that passed both, one row per
	//            (cluster, group, topic, partition), the last in batch
	//            order (ON CONFLICT cannot touch a row twice), inserted in
	//            key order.
	// The result says, per commit, whether its fence held and its
	// cluster exists; ins runs whether or not its rows are read.
	rows, err := s.pool.Query(ctx, `
		WITH commits AS MATERIALIZED (
			SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::int[])
				WITH ORDINALITY AS c(cluster_id, group_id, slot, leader_id, leader_epoch, n)
		), fence AS MATERIALIZED (
			SELECT slot, leader_id, leader_epoch FROM coordinator_slots
			WHERE (slot, leader_id, leader_epoch) IN (SELECT slot, leader_id, leader_epoch FROM commits)
			ORDER BY slot
			FOR SHARE
		), live AS MATERIALIZED (
			SELECT id FROM virtual_clusters
			WHERE id IN (SELECT cluster_id FROM commits)
			ORDER BY id
			FOR KEY SHARE
		), ok AS MATERIALIZED (
			SELECT c.n, c.cluster_id, c.group_id FROM commits c
			JOIN fence f USING (slot, leader_id, leader_epoch)
			JOIN live l ON l.id = c.cluster_id
		), ins AS (
			INSERT INTO group_offsets (cluster_id, group_id, topic, partition, committed, leader_epoch, metadata)
			SELECT DISTINCT ON (ok.cluster_id, ok.group_id, r.topic, r.partition)
				ok.cluster_id, ok.group_id, r.topic, r.partition, r.committed, r.leader_epoch, r.metadata
			FROM unnest($6::int[], $7::text[], $8::int[], $9::bigint[], $10::int[], $11::text[])
				WITH ORDINALITY AS r(n, topic, partition, committed, leader_epoch, metadata, ord)
			JOIN ok ON ok.n = r.n
			ORDER BY ok.cluster_id, ok.group_id, r.topic, r.partition, r.ord DESC
			ON CONFLICT (cluster_id, group_id, topic, partition) DO UPDATE SET
				committed = EXCLUDED.committed, leader_epoch = EXCLUDED.leader_epoch,
				metadata = EXCLUDED.metadata, committed_at = now()
			RETURNING 1
		)
		SELECT c.n, f.slot IS NOT NULL, l.id IS NOT NULL
		FROM commits c
		LEFT JOIN fence f USING (slot, leader_id, leader_epoch)
		LEFT JOIN live l ON l.id = c.cluster_id`,
		clusters, groups, slots, leaders, epochs,
		rowN, topics, parts, offsets, rowEpochs, metas)
	if err != nil {
		return nil, fmt.Errorf("store: commit offsets of %d groups: %w", len(clusters), err)
	}
	defer rows.Close()
	seen := 0
	for rows.Next() {
		var n int64
		var owned, exists bool
		if err := rows.Scan(&n, &owned, &exists); err != nil {
			return nil, fmt.Errorf("store: commit offsets of %d groups: %w", len(clusters), err)
		}
		if n < 1 || int(n) > len(ns) {
			return nil, fmt.Errorf("store: commit offsets: statement answered for commit %d of %d", n, len(ns))
		}
		i := ns[n-1]
		c := commits[i]
		switch {
		case !owned:
			outcomes[i] = fmt.Errorf("store: commit offsets for group %s: slot %d no longer led by broker %d at epoch %d: %w",
				c.Group, c.Fence.Slot, c.Fence.BrokerID, c.Fence.LeaderEpoch, ErrFenced)
		case !exists:
			outcomes[i] = fmt.Errorf("store: commit offsets for group %s: cluster %s: %w", c.Group, c.ClusterID, ErrNotFound)
		}
		seen++
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: commit offsets of %d groups: %w", len(clusters), err)
	}
	if seen != len(ns) {
		return nil, fmt.Errorf("store: commit offsets: statement answered for %d of %d commits", seen, len(ns))
	}
	return outcomes, nil
}

// storable reports whether Postgres text can hold every string of c:
// valid UTF-8 without NUL bytes. Kafka strings are arbitrary bytes; one
// that is not would fail a whole batch, so it is refused on its own.
func storable(c OffsetCommit) bool {
	if !storableText(c.ClusterID) || !storableText(c.Group) {
		return false
	}
	for _, o := range c.Offsets {
		if !storableText(o.Topic) || !storableText(o.Metadata) {
			return false
		}
	}
	return true
}

// FetchOffsets returns every committed offset of a group, by topic and
// partition.
func (s *Store) FetchOffsets(ctx context.Context, clusterID, group string) ([]GroupOffset, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT g.topic, g.partition, g.committed, g.leader_epoch, g.metadata, coalesce(p.high_watermark, -1), g.committed_at
		FROM group_offsets g
		LEFT JOIN topics t ON t.cluster_id = g.cluster_id AND t.name = g.topic
		LEFT JOIN partitions p ON p.topic_id = t.id AND p.partition = g.partition
		WHERE g.cluster_id = $1 AND g.group_id = $2
		ORDER BY g.topic, g.partition`, clusterID, group)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (GroupOffset, error) {
		var o GroupOffset
		return o, r.Scan(&o.Topic, &o.Partition, &o.Offset, &o.LeaderEpoch, &o.Metadata, &o.HighWatermark, &o.CommittedAt)
	})
	if err != nil {
		return nil, fmt.Errorf("store: fetch offsets for group %s: %w", group, err)
	}
	return out, nil
}

// GroupOffsets returns one group's committed offsets with their lag, by
// topic and partition, from a cluster of orgID; ErrNotFound if the group
// has none (or the cluster is not orgID's).
func (s *Store) GroupOffsets(ctx context.Context, orgID, clusterID, group string) ([]GroupOffset, error) {
	if _, err := s.Cluster(ctx, orgID, clusterID); err != nil {
		return nil, err
	}
	out, err := s.FetchOffsets(ctx, clusterID, group)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, ErrNotFound
	}
	return out, nil
}

// GroupSummary is a consumer group of a cluster as its committed offsets
// show it.
type GroupSummary struct {
	Group       string
	Partitions  int32 // partitions with a committed offset
	TotalLag    int64
	CommittedAt time.Time // newest commit
}

// Groups lists the consumer groups with committed offsets in a cluster of
// orgID, by group id. A cluster outside orgID is ErrNotFound.
func (s *Store) Groups(ctx context.Context, orgID, clusterID string, p Page) ([]GroupSummary, string, error) {
	if _, err := s.Cluster(ctx, orgID, clusterID); err != nil {
		return nil, "", err
	}
	rows, _ := s.pool.Query(ctx, `
		SELECT g.group_id, count(*),
		       coalesce(sum(greatest(p.high_watermark - g.committed, 0)), 0),
		       max(g.committed_at)
		FROM group_offsets g
		LEFT JOIN topics t ON t.cluster_id = g.cluster_id AND t.name = g.topic
		LEFT JOIN partitions p ON p.topic_id = t.id AND p.partition = g.partition
		WHERE g.cluster_id = $1 AND g.group_id > $2
		GROUP BY g.group_id
		ORDER BY g.group_id
		LIMIT $3`, clusterID, p.After, p.limit()+1)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (GroupSummary, error) {
		var g GroupSummary
		return g, r.Scan(&g.Group, &g.Partitions, &g.TotalLag, &g.CommittedAt)
	})
	if err != nil {
		return nil, "", fmt.Errorf("store: groups: %w", err)
	}
	out, next := page(out, p.limit(), func(g GroupSummary) string { return g.Group })
	return out, next, nil
}

// DeleteGroupOffsets deletes a group's offsets: all of them when topics is
// nil, else only the listed partitions.
func (s *Store) DeleteGroupOffsets(ctx context.Context, clusterID, group string, topics map[string][]int32) error {
	if topics == nil {
		_, err := s.pool.Exec(ctx, `DELETE FROM group_offsets WHERE cluster_id = $1 AND group_id = $2`, clusterID, group)
		if err != nil {
			return fmt.Errorf("store: delete offsets for group %s: %w", group, err)
		}
		return nil
	}
	var ts []string
	var ps []int32
	for t, parts := range topics {
		for _, p := range parts {
			ts, ps = append(ts, t), append(ps, p)
		}
	}
	_, err := s.pool.Exec(ctx, `
		DELETE FROM group_offsets g USING unnest($3::text[], $4::int[]) AS d(topic, partition)
		WHERE g.cluster_id = $1 AND g.group_id = $2 AND g.topic = d.topic AND g.partition = d.partition`,
		clusterID, group, ts, ps)
	if err != nil {
		return fmt.Errorf("store: delete offsets for group %s: %w", group, err)
	}
	return nil
}

// GroupsWithOffsets lists the groups of a cluster that have committed
// offsets.
func (s *Store) GroupsWithOffsets(ctx context.Context, clusterID string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT group_id FROM group_offsets WHERE cluster_id = $1 ORDER BY 1`, clusterID)
	if err != nil {
		return nil, fmt.Errorf("store: list groups: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// GroupLag is one committed offset with its partition's high watermark
// and last stable offset.
type GroupLag struct {
	ClusterID     string
	Group         string
	Topic         string
	Partition     int32
	Committed     int64
	HighWatermark int64
	LastStable    int64
}

// GroupLags returns every committed offset of topics that still exist,
// with the partition's high watermark and last stable offset, for lag
// reporting.
func (s *Store) GroupLags(ctx context.Context) ([]GroupLag, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT g.cluster_id, g.group_id, g.topic, g.partition, g.committed, p.high_watermark, `+lastStableSQL+`
		FROM group_offsets g
		JOIN topics t ON t.cluster_id = g.cluster_id AND t.name = g.topic
		JOIN partitions p ON p.topic_id = t.id AND p.partition = g.partition`)
	if err != nil {
		return nil, fmt.Errorf("store: group lags: %w", err)
	}
	defer rows.Close()
	var out []GroupLag
	for rows.Next() {
		var l GroupLag
		if err := rows.Scan(&l.ClusterID, &l.Group, &l.Topic, &l.Partition, &l.Committed, &l.HighWatermark, &l.LastStable); err != nil {
			return nil, fmt.Errorf("store: group lags: %w", err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// GroupKey names a group across virtual clusters.
type GroupKey struct {
	ClusterID string
	Group     string
}

// StaleGroups lists the groups whose newest committed offset is older than
// before: the candidates for offset expiry.
func (s *Store) StaleGroups(ctx context.Context, before time.Time) ([]GroupKey, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT cluster_id, group_id FROM group_offsets
		GROUP BY cluster_id, group_id HAVING max(committed_at) < $1`, before)
	if err != nil {
		return nil, fmt.Errorf("store: stale groups: %w", err)
	}
	defer rows.Close()
	var out []GroupKey
	for rows.Next() {
		var k GroupKey
		if err := rows.Scan(&k.ClusterID, &k.Group); err != nil {
			return nil, fmt.Errorf("store: stale groups: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// ExpireGroupOffsets deletes a group's offsets if none of them was
// committed at or after before, in one statement: a commit that races with
// the expiry either lands first (and nothing is deleted) or after (and is
// kept).
func (s *Store) ExpireGroupOffsets(ctx context.Context, clusterID, group string, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `
		DELETE FROM group_offsets
		WHERE cluster_id = $1 AND group_id = $2
		AND NOT EXISTS (SELECT 1 FROM group_offsets
			WHERE cluster_id = $1 AND group_id = $2 AND committed_at >= $3)`,
		clusterID, group, before)
	if err != nil {
		return 0, fmt.Errorf("store: expire offsets of group %s: %w", group, err)
	}
	return tag.RowsAffected(), nil
}

// GroupCount counts clusterID's consumer groups (those with committed
// offsets or persisted membership) and reports whether group is one of
// them, for the cap on groups per cluster.
func (s *Store) GroupCount(ctx context.Context, clusterID, group string) (int, bool, error) {
	var (
		n     int
		known bool
	)
	err := s.pool.QueryRow(ctx, `
		WITH g AS (
			SELECT group_id FROM group_states WHERE cluster_id = $1
			UNION SELECT group_id FROM group_offsets WHERE cluster_id = $1
		)
		SELECT count(*), coalesce(bool_or(group_id = $2), false) FROM g`, clusterID, group).Scan(&n, &known)
	if err != nil {
		return 0, false, fmt.Errorf("store: count groups: %w", err)
	}
	return n, known, nil
}
