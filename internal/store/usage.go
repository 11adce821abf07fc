package store

import (
	"context"
	"fmt"
	"time"
)

// UsageReport is one virtual cluster's usage counted by one broker in one
// metering window. (BrokerID, BootID, WindowStart, Cluster) is its
// idempotency key.
type UsageReport struct {
	BrokerID               int32
	BootID                 string
	WindowStart, WindowEnd time.Time
	Cluster                string
	BytesIn, BytesOut      int64
	Requests, Connections  int64
}

// InsertUsage stores reports in one statement. A report whose key is
// already stored is skipped (ON CONFLICT DO NOTHING), so retrying or
// replaying reports never counts twice (DESIGN.md invariant 8).
func (s *Store) InsertUsage(ctx context.Context, reports []UsageReport) error {
	if len(reports) == 0 {
		return nil
	}
	n := len(reports)
	var (
		brokers              = make([]int32, n)
		boots, clusters      = make([]string, n), make([]string, n)
		starts, ends         = make([]time.Time, n), make([]time.Time, n)
		in, out, reqs, conns = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	)
	for i, r := range reports {
		brokers[i], boots[i], clusters[i] = r.BrokerID, r.BootID, r.Cluster
		starts[i], ends[i] = r.WindowStart, r.WindowEnd
		in[i], out[i], reqs[i], conns[i] = r.BytesIn, r.BytesOut, r.Requests, r.Connections
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO usage_reports (broker_id, boot_id, window_start, cluster_id, window_end,
			bytes_in, bytes_out, requests, connections)
		SELECT * FROM unnest($1::int[], $2::text[], $3::timestamptz[], $4::text[], $5::timestamptz[],
			$6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])
		ON CONFLICT (broker_id, boot_id, window_start, cluster_id) DO NOTHING`,
		brokers, boots, starts, clusters, ends, in, out, reqs, conns)
	if err != nil {
		return fmt.Errorf("store: insert usage: %w", err)
	}
	return nil
}
