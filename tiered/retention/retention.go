// Package retention enforces the topics' retention.ms and retention.bytes:
// it drops a partition's oldest whole index rows (pieces) that break a
// limit and advances the log start offset past them, in one Postgres
// transaction per partition (store.ApplyRetention). The bytes themselves
// go when garbage collection finds their objects unreferenced.
//
// Topics whose cleanup.policy does not include delete are left alone, as
// in Kafka. Enforce is safe to run concurrently with itself, produce,
// fetch, compaction and DeleteRecords: each step locks the partition row.
package retention

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/internal/topicconfig"
	"github.com/prometheus/client_golang/prometheus"
)

// Enforcer applies retention to every partition.
type Enforcer struct {
	st  *store.Store
	log *slog.Logger
	// Now is the clock (tests move it).
	Now     func() time.Time
	dropped prometheus.Counter
}

// New returns an Enforcer; reg may be nil.
func New(st *store.Store, log *slog.Logger, reg prometheus.Registerer) *Enforcer {
	e := &Enforcer{st: st, log: log, Now: time.Now,
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_retention_dropped_rows_total", Help: "Index rows dropped by retention."}),
	}
	if reg != nil {
		reg.MustRegister(e.dropped)
	}
	return e
}

// Result says what one pass did.
type Result struct {
	Partitions  int // partitions whose log start moved
	DroppedRows int
}

// Enforce makes one pass over every partition of the shard (the zero
// Shard: all) holding data.
func (e *Enforcer) Enforce(ctx context.Context, sh store.Shard) (Result, error) {
	var (
		res   Result
		after int64
	)
	now := e.Now().UnixMilli()
	for {
		page, err := e.st.PartitionsWithData(ctx, sh, after, 500)
		if err != nil {
			return res, err
		}
		for _, t := range page {
			after = t.PartitionID
			cutoff, maxBytes, ok := limits(t.Configs, now)
			if !ok {
				continue
			}
			start, n, err := e.st.ApplyRetention(ctx, t.PartitionID, cutoff, maxBytes)
			if err != nil {
				return res, err
			}
			if n > 0 {
				res.Partitions++
				res.DroppedRows += n
				e.dropped.Add(float64(n))
				e.log.Debug("retention", "partition", t.PartitionID, "log_start", start, "dropped_rows", n)
			}
		}
		if len(page) < 500 {
			return res, nil
		}
	}
}

// limits returns the time cutoff (Unix ms, -1 for none) and size bound
// (-1 for none) of a topic's configs; ok is false if nothing applies.
func limits(configs map[string]string, nowMs int64) (cutoff, maxBytes int64, ok bool) {
	policy := strings.Split(topicconfig.Value(configs, "cleanup.policy"), ",")
	for i := range policy {
		policy[i] = strings.TrimSpace(policy[i])
	}
	if !slices.Contains(policy, "delete") {
		return -1, -1, false
	}
	cutoff, maxBytes = -1, topicconfig.Int64(configs, "retention.bytes")
	if ms := topicconfig.Int64(configs, "retention.ms"); ms >= 0 {
		cutoff = nowMs - ms
	}
	return cutoff, maxBytes, cutoff >= 0 || maxBytes >= 0
}
