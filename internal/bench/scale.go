package bench

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/eddy-streams/eddy/internal/limits"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sync/errgroup"
)

// Scale is the scale scenario: Partitions partitions spread over Clusters
// virtual clusters (topics of at most TopicPartitions partitions each),
// created through the store as the REST API would, on an otherwise idle
// pool. Once every partition is led and the pool has settled, it measures
// what the idle pool costs over a Quiet window (Postgres transactions and
// rows per second, object-store PUTs per second, broker CPU) and the
// brokers' resident memory, then the latency of Requests Metadata
// requests of the first cluster: for all its topics, and for one topic.
//
// It runs against Eddy only, needs Eddy's database and the brokers'
// metrics, and leaves its clusters behind: run it on a stack of its own
// (`eddy bench --start-stack --scale-partitions N`). It is not in the
// standard set: at 10,000 partitions it takes minutes.
type Scale struct {
	Name            string        `json:"name"`
	Partitions      int           `json:"partitions"`
	Clusters        int           `json:"clusters"`
	TopicPartitions int           `json:"topic_partitions"` // at most, per topic
	Quiet           time.Duration `json:"quiet"`            // the idle window measured
	Settle          time.Duration `json:"settle"`           // idle before the window
	Requests        int           `json:"requests"`         // Metadata requests of each kind
}

// ScaleName names the scenario.
const ScaleName = "scale"

// DefaultScale is the scenario for partitions over clusters.
func DefaultScale(partitions, clusters int) Scale {
	return Scale{Name: ScaleName, Partitions: partitions, Clusters: clusters, TopicPartitions: 100,
		Quiet: 30 * time.Second, Settle: 10 * time.Second, Requests: 200}
}

// Validate reports the first invalid setting.
func (x Scale) Validate() error {
	switch {
	case x.Clusters < 1 || x.Partitions < x.Clusters:
		return fmt.Errorf("bench: %s: at least one cluster, and at least one partition per cluster", x.Name)
	case x.Partitions/x.Clusters > 100_000:
		return fmt.Errorf("bench: %s: at most 100,000 partitions per cluster (a plan's ceiling)", x.Name)
	case x.TopicPartitions < 1:
		return fmt.Errorf("bench: %s: topics need at least one partition", x.Name)
	case x.Quiet < time.Second || x.Settle < 0:
		return fmt.Errorf("bench: %s: the quiet window must be at least 1s and settling not negative", x.Name)
	case x.Requests < 1:
		return fmt.Errorf("bench: %s: at least one Metadata request", x.Name)
	}
	return nil
}

// Describe is a one-line summary for the workloads table.
func (x Scale) Describe() string {
	return fmt.Sprintf("%d partitions over %d virtual clusters (topics of up to %d partitions), created through the store; idle pool measured over %s after %s; %d Metadata requests of each kind to the first cluster",
		x.Partitions, x.Clusters, x.TopicPartitions, x.Quiet, x.Settle, x.Requests)
}

// ScaleResult is the scenario's outcome.
type ScaleResult struct {
	Scenario      Scale   `json:"scenario"`
	CreateSeconds float64 `json:"create_seconds"` // clusters and topics, until every partition is led
	// Idle is the pool with nothing produced or consumed.
	Idle Idle `json:"idle"`
	// RSSBefore and RSSAfter are the brokers' resident memory (sum) before
	// the clusters were made and after the quiet window.
	RSSBeforeMiB       float64     `json:"rss_before_mib"`
	RSSAfterMiB        float64     `json:"rss_after_mib"`
	HeapAfterMiB       float64     `json:"heap_inuse_after_mib"`
	BytesPerPartition  float64     `json:"rss_bytes_per_partition"` // RSS growth over partitions
	MetadataPartitions int         `json:"metadata_partitions"`     // of the cluster asked
	MetadataAll        Percentiles `json:"metadata_all_topics_ms"`
	MetadataOne        Percentiles `json:"metadata_one_topic_ms"`
}

// Idle is what an idle pool costs per second.
type Idle struct {
	PGXactsPerSec       float64 `json:"pg_xacts_per_sec"`
	PGRowsReadPerSec    float64 `json:"pg_rows_read_per_sec"`
	PGRowsWrittenPerSec float64 `json:"pg_rows_written_per_sec"`
	// TopTables are the tables read most, rows per second, busiest first.
	TopTables  []TableRate `json:"pg_top_tables"`
	PutsPerSec float64     `json:"objstore_puts_per_sec"`
	CPUCores   float64     `json:"broker_cpu_cores"`
}

// poolState is one reading of the brokers' metrics and the database's
// counters.
type poolState struct {
	counters
	db     store.DatabaseActivity
	tables map[string]int64
}

func readPool(ctx context.Context, st *store.Store, tg target) (poolState, error) {
	var (
		ps  poolState
		err error
	)
	if ps.counters, err = snapshot(ctx, tg); err != nil {
		return ps, err
	}
	if ps.db, err = st.Activity(ctx); err != nil {
		return ps, err
	}
	ps.tables, err = st.TableReads(ctx)
	return ps, err
}

// TableRate is the rows per second read from one table.
type TableRate struct {
	Table  string  `json:"table"`
	PerSec float64 `json:"rows_read_per_sec"`
}

func idleBetween(a, b poolState) Idle {
	secs := b.at.Sub(a.at).Seconds()
	var top []TableRate
	for name, n := range b.tables {
		if d := n - a.tables[name]; d > 0 {
			top = append(top, TableRate{name, float64(d) / secs})
		}
	}
	slices.SortFunc(top, func(x, y TableRate) int { return cmp.Compare(y.PerSec, x.PerSec) })
	return Idle{
		TopTables:           top[:min(len(top), 5)],
		PGXactsPerSec:       float64(b.db.Commits-a.db.Commits) / secs,
		PGRowsReadPerSec:    float64(b.db.RowsRead-a.db.RowsRead) / secs,
		PGRowsWrittenPerSec: float64(b.db.RowsWritten-a.db.RowsWritten) / secs,
		PutsPerSec:          (b.puts - a.puts) / secs,
		CPUCores:            (b.cpu - a.cpu) / secs,
	}
}

func runScale(ctx context.Context, eddy target, x Scale, progress func(string)) (*ScaleResult, error) {
	if len(eddy.metrics) == 0 {
		return nil, errors.New("needs the brokers' metrics (--metrics or --start-stack)")
	}
	st, err := store.Open(ctx, eddy.dbURL, 8)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	res := &ScaleResult{Scenario: x}
	before, err := readPool(ctx, st, eddy)
	if err != nil {
		return nil, err
	}
	res.RSSBeforeMiB = before.rss / (1 << 20)

	start := time.Now()
	suffix := strings.ToLower(rand.Text()[:6])
	lim := limits.Defaults()
	per := (x.Partitions + x.Clusters - 1) / x.Clusters
	lim.MaxPartitions, lim.MaxTopics = int32(per), int32(max(per, int(lim.MaxTopics)))
	tenants := make([]tenant, x.Clusters)
	// A few clusters at a time, as many customers signing up would.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	var done atomic.Int64
	for i := range x.Clusters {
		g.Go(func() error {
			t, err := makeTenant(gctx, st, fmt.Sprintf("bench-%s-%s-%d", x.Name, suffix, i), lim)
			if err != nil {
				return fmt.Errorf("cluster %d: %w", i, err)
			}
			tenants[i] = t
			n := x.Partitions / x.Clusters
			if i < x.Partitions%x.Clusters {
				n++
			}
			for j := 0; n > 0; j++ {
				k := min(n, x.TopicPartitions)
				if _, _, err := st.CreateTopic(gctx, t.org, t.cluster, fmt.Sprintf("scale-%d", j), int32(k), nil); err != nil {
					return fmt.Errorf("cluster %d topic %d: %w", i, j, err)
				}
				n -= k
			}
			if d := done.Add(1); d%int64(max(1, x.Clusters/20)) == 0 {
				progress(fmt.Sprintf("%s: %d of %d clusters created", x.Name, d, x.Clusters))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	// Every partition placed and loaded by its leader.
	for {
		ps, err := readPool(ctx, st, eddy)
		if err != nil {
			return nil, err
		}
		if int(ps.led) >= x.Partitions {
			break
		}
		progress(fmt.Sprintf("%s: %d of %d partitions led", x.Name, int(ps.led), x.Partitions))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	res.CreateSeconds = time.Since(start).Seconds()

	progress(fmt.Sprintf("%s: settling for %s, then measuring the idle pool for %s", x.Name, x.Settle, x.Quiet))
	if err := sleepCtx(ctx, x.Settle); err != nil {
		return nil, err
	}
	a, err := readPool(ctx, st, eddy)
	if err != nil {
		return nil, err
	}
	if err := sleepCtx(ctx, x.Quiet); err != nil {
		return nil, err
	}
	b, err := readPool(ctx, st, eddy)
	if err != nil {
		return nil, err
	}
	res.Idle = idleBetween(a, b)
	res.RSSAfterMiB, res.HeapAfterMiB = b.rss/(1<<20), b.heap/(1<<20)
	res.BytesPerPartition = (b.rss - before.rss) / float64(x.Partitions)

	progress(fmt.Sprintf("%s: %d Metadata requests of each kind", x.Name, x.Requests))
	tg := eddy
	tg.opts = append(tg.opts[:len(tg.opts):len(tg.opts)], tenants[0].opt)
	if err := metadataLatency(ctx, tg, x.Requests, res); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	return res, nil
}

// metadataLatency times Metadata requests of all topics and of one topic,
// round robin over the brokers, one at a time.
func metadataLatency(ctx context.Context, tg target, n int, res *ScaleResult) error {
	cl, err := tg.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	all := kmsg.NewPtrMetadataRequest()
	first, err := all.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	if len(first.Topics) == 0 || len(first.Brokers) == 0 {
		return fmt.Errorf("no topics or brokers in Metadata")
	}
	one := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = first.Topics[0].Topic
	one.Topics = append(one.Topics, rt)
	for _, t := range first.Topics {
		if !t.IsInternal {
			res.MetadataPartitions += len(t.Partitions)
		}
	}
	for _, c := range []struct {
		req *kmsg.MetadataRequest
		out *Percentiles
	}{{all, &res.MetadataAll}, {one, &res.MetadataOne}} {
		var lat latencies
		for i := range n {
			b := cl.Broker(int(first.Brokers[i%len(first.Brokers)].NodeID))
			t0 := time.Now()
			r, err := b.Request(ctx, c.req)
			if err != nil {
				return err
			}
			lat.add(time.Since(t0))
			if len(r.(*kmsg.MetadataResponse).Topics) == 0 {
				return fmt.Errorf("empty Metadata response")
			}
		}
		*c.out = lat.percentiles()
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

const scaleTitle = "Scale"

// scaleTable has a row per run of the scale scenario.
func scaleTable(rs []ScaleResult) *table {
	t := &table{title: scaleTitle + " (idle pool; Metadata latency in ms; goal: Metadata p99 under 50 ms at 10,000 partitions, idle Postgres xact/s and PUTs/s flat in partitions)",
		header: []string{"partitions", "clusters", "created in s", "PG xact/s", "PG rows read/s", "PG rows written/s", "PUTs/s", "broker CPU cores",
			"RSS MiB before", "RSS MiB after", "RSS bytes/partition", "Metadata partitions", "all topics p50", "all topics p99", "one topic p50", "one topic p99"}}
	for _, r := range rs {
		i := r.Idle
		t.add(fmt.Sprint(r.Scenario.Partitions), fmt.Sprint(r.Scenario.Clusters), f1(r.CreateSeconds), f1(i.PGXactsPerSec), f1(i.PGRowsReadPerSec), f1(i.PGRowsWrittenPerSec),
			f1(i.PutsPerSec), f1(i.CPUCores), f1(r.RSSBeforeMiB), f1(r.RSSAfterMiB), fmt.Sprintf("%.0f", r.BytesPerPartition), fmt.Sprint(r.MetadataPartitions),
			f1(r.MetadataAll.P50), f1(r.MetadataAll.P99), f1(r.MetadataOne.P50), f1(r.MetadataOne.P99))
	}
	return t
}

// Sentence is the scenario's result in one sentence.
func (r *ScaleResult) Sentence() string {
	var top []string
	for _, t := range r.Idle.TopTables {
		top = append(top, fmt.Sprintf("%s %s", t.Table, f1(t.PerSec)))
	}
	return fmt.Sprintf("With %d partitions over %d virtual clusters on an idle pool, Postgres committed %s transactions/s (%s rows read/s), the brokers issued %s PUTs/s and used %s CPU cores; "+
		"resident memory grew by about %s bytes per partition; a Metadata request for all %d partitions of one cluster took %s ms at p99, for one topic %s ms. Rows read per second by table: %s.",
		r.Scenario.Partitions, r.Scenario.Clusters, f1(r.Idle.PGXactsPerSec), f1(r.Idle.PGRowsReadPerSec), f1(r.Idle.PutsPerSec), f1(r.Idle.CPUCores),
		fmt.Sprintf("%.0f", r.BytesPerPartition), r.MetadataPartitions, f1(r.MetadataAll.P99), f1(r.MetadataOne.P99), strings.Join(top, ", "))
}
