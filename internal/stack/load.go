package stack

// Load: steady acks=all, idempotent produce traffic against a stack, with
// the ground truth to check it by afterwards (which record was
// acknowledged where) and the latency of every acknowledgement.

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/internal/poll"
)

// Load produces to one topic from a few goroutines, with franz-go's
// defaults (acks=all, idempotent) and retries that outlast any failover.
// Its methods are safe for concurrent use; Stop ends it.
type Load struct {
	t      testing.TB
	s      *Stack
	topic  string
	cl     *kgo.Client
	cancel context.CancelFunc
	wg     sync.WaitGroup

	failed  atomic.Int64
	lastErr atomic.Value

	mu   sync.Mutex
	acks map[string]ackPos // value → where the broker said it landed
	lats []ackLatency
}

type ackPos struct {
	partition int32
	offset    int64
}

type ackLatency struct {
	sent      time.Time
	d         time.Duration
	partition int32
}

// StartLoad creates topic with partitions partitions and starts producing
// to it; the client is closed when the test ends.
func (s *Stack) StartLoad(topic string, partitions int32) *Load {
	s.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.Bootstrap()...), kgo.DefaultProduceTopic(topic),
		kgo.RecordRetries(1 << 30), kgo.RecordDeliveryTimeout(2 * time.Minute),
		kgo.MetadataMinAge(250 * time.Millisecond)}, s.opts.ClientOpts...)...)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, -1, nil, topic); err != nil || resp.Err != nil {
		s.t.Fatalf("create topic %s: %v %v", topic, err, resp.Err)
	}
	lctx, stop := context.WithCancel(context.Background())
	l := &Load{t: s.t, s: s, topic: topic, cl: cl, cancel: stop, acks: map[string]ackPos{}}
	var seq atomic.Int64
	for range 4 {
		l.wg.Go(func() {
			for lctx.Err() == nil {
				i := seq.Add(1)
				r := &kgo.Record{Key: []byte(strconv.FormatInt(i%97, 10)), Value: []byte("v" + strconv.FormatInt(i, 10))}
				sent := time.Now()
				cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
					if err != nil {
						l.failed.Add(1)
						l.lastErr.Store(err)
						return
					}
					now := time.Now()
					l.mu.Lock()
					l.acks[string(r.Value)] = ackPos{r.Partition, r.Offset}
					l.lats = append(l.lats, ackLatency{sent, now.Sub(sent), r.Partition})
					l.mu.Unlock()
				})
				if i%50 == 0 {
					time.Sleep(5 * time.Millisecond) // a steady stream, not a flood
				}
			}
		})
	}
	return l
}

// Client is the producing client (for metadata and admin requests).
func (l *Load) Client() *kgo.Client { return l.cl }

// Acked returns how many records were acknowledged so far, and on how many
// partitions.
func (l *Load) Acked() (records, partitions int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ps := map[int32]bool{}
	for _, a := range l.acks {
		ps[a.partition] = true
	}
	return len(l.acks), len(ps)
}

// WaitFlowing waits until records were acknowledged on every one of the
// topic's partitions (the load is on), failing the test after within.
func (l *Load) WaitFlowing(partitions int, within time.Duration) {
	l.t.Helper()
	poll.Until(l.t, within, fmt.Sprintf("acknowledged records on every partition of %s", l.topic), func() error {
		if n, ps := l.Acked(); ps < partitions {
			return fmt.Errorf("%d records acknowledged on %d of %d partitions", n, ps, partitions)
		}
		return nil
	})
}

// P99 returns the 99th percentile of the acknowledgement latencies of
// the records sent in [from, to), and how many there were; after Stop it
// counts every record, including those acknowledged late.
func (l *Load) P99(from, to time.Time) (time.Duration, int) {
	l.mu.Lock()
	var ds []time.Duration
	for _, a := range l.lats {
		if !a.sent.Before(from) && a.sent.Before(to) {
			ds = append(ds, a.d)
		}
	}
	l.mu.Unlock()
	if len(ds) == 0 {
		return 0, 0
	}
	slices.Sort(ds)
	return ds[(len(ds)*99)/100], len(ds)
}

// Stop stops producing and waits for every record in flight to be
// acknowledged (or fail for good: such records were never acknowledged).
func (l *Load) Stop() {
	l.t.Helper()
	l.cancel()
	l.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := l.cl.Flush(ctx); err != nil {
		l.t.Fatal(err)
	}
	if n := l.failed.Load(); n > 0 {
		l.t.Logf("%d produce attempts failed for good (last: %v); they were never acknowledged", n, l.lastErr.Load())
	}
}

// Verify reads the topic back after Stop and fails the test unless every
// acknowledged record is there exactly once, at the partition and offset
// its acknowledgement named.
func (l *Load) Verify() {
	l.t.Helper()
	l.mu.Lock()
	acks := maps.Clone(l.acks)
	l.mu.Unlock()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(l.s.Bootstrap()...), kgo.ConsumeTopics(l.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200 * time.Millisecond)}, l.s.opts.ClientOpts...)...)
	if err != nil {
		l.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	seen := map[string]bool{}
	for len(seen) < len(acks) && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachError(func(tp string, p int32, err error) {
			if ctx.Err() == nil {
				l.t.Logf("fetch error %s/%d: %v", tp, p, err)
			}
		})
		for _, r := range fs.Records() {
			v := string(r.Value)
			if seen[v] {
				l.t.Fatalf("record %s read twice (again at %d/%d)", v, r.Partition, r.Offset)
			}
			seen[v] = true
			if a, ok := acks[v]; ok && (a.partition != r.Partition || a.offset != r.Offset) {
				l.t.Fatalf("record %s acknowledged at %d/%d but read at %d/%d", v, a.partition, a.offset, r.Partition, r.Offset)
			}
		}
	}
	var lost []string
	for v := range acks {
		if !seen[v] {
			lost = append(lost, v)
		}
	}
	if len(lost) > 0 {
		slices.Sort(lost)
		l.t.Fatalf("%d of %d acknowledged records lost (first: %v)", len(lost), len(acks), lost[:min(len(lost), 10)])
	}
	l.t.Logf("%d acknowledged records read back exactly once, where acknowledged (%d read in all)", len(acks), len(seen))
}

// Leaders returns partition → leader of topic as the brokers' Metadata
// says; -1 for a partition without a leader.
func Leaders(ctx context.Context, cl *kgo.Client, topic string) (map[int32]int32, error) {
	md, err := kadm.NewClient(cl).Metadata(ctx, topic)
	if err != nil {
		return nil, err
	}
	t, ok := md.Topics[topic]
	if !ok || t.Err != nil {
		return nil, fmt.Errorf("metadata of %s: %v", topic, t.Err)
	}
	out := map[int32]int32{}
	for _, p := range t.Partitions {
		out[p.Partition] = p.Leader
	}
	return out, nil
}

// Slowest describes the n slowest acknowledgements of records sent in
// [from, to), one per stall (records sent within 200ms of a slower one
// are left out), with send times relative to from.
func (l *Load) Slowest(from, to time.Time, n int) []string {
	l.mu.Lock()
	var ds []ackLatency
	for _, a := range l.lats {
		if !a.sent.Before(from) && a.sent.Before(to) {
			ds = append(ds, a)
		}
	}
	l.mu.Unlock()
	slices.SortFunc(ds, func(a, b ackLatency) int { return int(b.d - a.d) })
	var out []string
	var seen []time.Time // one line per stall: skip records sent near one shown
next:
	for i := 0; i < len(ds) && len(out) < n; i++ {
		for _, at := range seen {
			if d := ds[i].sent.Sub(at); d > -200*time.Millisecond && d < 200*time.Millisecond {
				continue next
			}
		}
		seen = append(seen, ds[i].sent)
		out = append(out, fmt.Sprintf("sent at +%v to partition %d, acknowledged after %v",
			ds[i].sent.Sub(from).Round(time.Millisecond), ds[i].partition, ds[i].d.Round(time.Millisecond)))
	}
	return out
}
