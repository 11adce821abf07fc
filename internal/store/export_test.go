package store

import (
	"context"
	"encoding/json"
	"time"
)

// FillIndex appends n index rows of one offset each to a partition, from
// offset base, all in one object: a long index without a long test.
func (s *Store) FillIndex(ctx context.Context, partitionID, base int64, n int) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO segments (partition_id, base_offset, end_offset, object_key, position, length, max_timestamp)
		SELECT $1, o, o + 1, 'fill.obj', (o - $2) * 100, 100, 0 FROM generate_series($2::bigint, $2::bigint + $3 - 1) AS o`,
		partitionID, base, n)
	if err == nil {
		_, err = s.pool.Exec(ctx, `ANALYZE segments`)
	}
	return err
}

// ExplainReadIndex runs ReadIndex's query under EXPLAIN (ANALYZE, BUFFERS)
// and returns the plan's text and the shared buffers it touched.
func (s *Store) ExplainReadIndex(ctx context.Context, partitionID, from int64, limit int) (string, int64, error) {
	var text string
	rows, err := s.pool.Query(ctx, `EXPLAIN (ANALYZE, BUFFERS) `+readIndexSQL, partitionID, from, limit)
	if err != nil {
		return "", 0, err
	}
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return "", 0, err
		}
		text += line + "\n"
	}
	if err := rows.Err(); err != nil {
		return "", 0, err
	}
	var plan []struct {
		Plan struct {
			Hit  int64 `json:"Shared Hit Blocks"`
			Read int64 `json:"Shared Read Blocks"`
		}
	}
	var raw []byte
	if err := s.pool.QueryRow(ctx, `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) `+readIndexSQL, partitionID, from, limit).Scan(&raw); err != nil {
		return "", 0, err
	}
	if err := json.Unmarshal(raw, &plan); err != nil {
		return "", 0, err
	}
	return text, plan[0].Plan.Hit + plan[0].Plan.Read, nil
}

// FillGroupOffsets commits one offset of topic t, partition 0, for n
// groups g00000… of a cluster, and analyzes the table.
func (s *Store) FillGroupOffsets(ctx context.Context, clusterID string, n int) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO group_offsets (cluster_id, group_id, topic, partition, committed)
		SELECT $1, 'g' || lpad(i::text, 6, '0'), 't', 0, 0 FROM generate_series(1, $2) AS i`, clusterID, n)
	if err == nil {
		_, err = s.pool.Exec(ctx, `ANALYZE group_offsets`)
	}
	return err
}

// ExplainSampleGroupLag runs SampleGroupLag's statement under EXPLAIN
// (ANALYZE, FORMAT JSON), in a transaction it rolls back, and returns the
// rows its scans of group_offsets read and the plan.
func (s *Store) ExplainSampleGroupLag(ctx context.Context, at time.Time, maxGroupsPerCluster int) (int64, string, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, "", err
	}
	defer tx.Rollback(ctx)
	var raw []byte
	if err := tx.QueryRow(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) `+sampleGroupLagSQL, at, maxGroupsPerCluster).Scan(&raw); err != nil {
		return 0, "", err
	}
	type node struct {
		Type     string  `json:"Node Type"`
		Relation string  `json:"Relation Name"`
		Rows     float64 `json:"Actual Rows"`
		Loops    float64 `json:"Actual Loops"`
		Plans    []node  `json:"Plans"`
	}
	var plan []struct{ Plan node }
	if err := json.Unmarshal(raw, &plan); err != nil {
		return 0, "", err
	}
	var read float64
	var walk func(n node)
	walk = func(n node) {
		if n.Relation == "group_offsets" {
			read += n.Rows * n.Loops
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(plan[0].Plan)
	return int64(read), string(raw), nil
}
