package store

import (
	"context"
	"encoding/json"
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
