package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Result is one workload run against one target.
type Result struct {
	Target   string  `json:"target"` // eddy or kfake
	Sent     int64   `json:"records_sent"`
	Acked    int64   `json:"records_acked"`
	Failed   int64   `json:"records_failed"`
	Consumed int64   `json:"records_consumed"` // by the tailing consumer
	Complete bool    `json:"complete"`         // the tailing consumer saw every acked record
	Seconds  float64 `json:"produce_seconds"`  // first send to last ack

	RecordsPerSec float64 `json:"produce_records_per_sec"`
	MBPerSec      float64 `json:"produce_mb_per_sec"` // value bytes, 10^6 B

	ProduceLatency Percentiles  `json:"produce_latency_ms"`
	EndToEnd       *Percentiles `json:"end_to_end_latency_ms,omitempty"`
	Cold           *ReadResult  `json:"consume_cold,omitempty"`
	Hot            *ReadResult  `json:"consume_hot,omitempty"`
	Cost           *Cost        `json:"cost,omitempty"`
	Index          *Index       `json:"index,omitempty"` // after the produce phase
}

// Percentiles of a latency distribution, in milliseconds.
type Percentiles struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

// ReadResult is one read-back of a range of the topic.
type ReadResult struct {
	Records  int64   `json:"records"`
	Bytes    int64   `json:"bytes"`      // value bytes
	Seconds  float64 `json:"seconds"`    // from the client's creation to the last record
	MBPerSec float64 `json:"mb_per_sec"` // from the first records received to the last
	// BucketShare is the bucket's GET payload bytes over the value bytes
	// read: about 1 when everything came from object storage, 0 from
	// memory. Eddy only (-1 when unknown).
	BucketShare float64 `json:"bucket_share"`
	// CacheShare is the part of BucketShare the brokers' read caches
	// fetched for consumers (the rest is compaction's and other jobs'
	// GETs). -1 when unknown.
	CacheShare float64 `json:"bucket_share_read_path"`
	GetsPerGiB float64 `json:"gets_per_gib"` // Eddy only
}

// Cost are the resource figures of the produce phase (Eddy only).
type Cost struct {
	PutsPerSec    float64 `json:"objstore_puts_per_sec"`
	PutsPerGiB    float64 `json:"objstore_puts_per_gib"`
	GetsPerGiB    float64 `json:"objstore_gets_per_gib"` // produce phase, tailing consumer included
	PGXactsPerSec float64 `json:"pg_xacts_per_sec"`      // -1 without --database-url
	PGWALPerGiB   float64 `json:"pg_wal_bytes_per_gib"`  // Postgres WAL bytes per GiB; -1 unknown
	CPUSecPerGiB  float64 `json:"broker_cpu_seconds_per_gib"`
	CPUCores      float64 `json:"broker_cpu_cores"` // CPU-seconds per second over all brokers
	FlushesPerSec float64 `json:"flushes_per_sec"`  // over all brokers
	FlushMs       float64 `json:"flush_mean_ms"`    // mean time to PUT and commit one flush
}

// target is where a workload runs.
type target struct {
	name    string
	seeds   []string
	metrics []string // empty: no cost figures
	dbURL   string
	opts    []kgo.Opt // for every client: credentials, hooks
}

// client is a kgo client of tg with opts.
func (tg target) client(opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append(append([]kgo.Opt{kgo.SeedBrokers(tg.seeds...)}, tg.opts...), opts...)...)
}

// hotWindow is how much of each partition's tail the hot read covers:
// less than a leader's default in-memory cache (8 MiB per partition).
const hotWindow = 4 << 20

// hotPasses is how many times the hot read reads its window.
const hotPasses = 4

// latencies collects samples from many goroutines.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) percentiles() Percentiles {
	l.mu.Lock()
	d := slices.Clone(l.d)
	l.mu.Unlock()
	if len(d) == 0 {
		return Percentiles{}
	}
	slices.Sort(d)
	at := func(p float64) float64 {
		return float64(d[int(p*float64(len(d)-1))]) / float64(time.Millisecond)
	}
	return Percentiles{Count: len(d), P50: at(0.50), P99: at(0.99), P999: at(0.999), Max: at(1)}
}

func acksOpt(s string) (kgo.Acks, error) {
	switch s {
	case "all", "-1":
		return kgo.AllISRAcks(), nil
	case "1":
		return kgo.LeaderAck(), nil
	case "0":
		return kgo.NoAck(), nil
	}
	return kgo.Acks{}, fmt.Errorf("acks must be all, 1 or 0, not %q", s)
}

func compressionOpt(s string) (kgo.CompressionCodec, error) {
	switch s {
	case "none", "":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("compression must be none, gzip, snappy, lz4 or zstd, not %q", s)
}

func partitionerOpt(s string) (kgo.Partitioner, error) {
	switch s {
	case "sticky", "":
		return kgo.StickyKeyPartitioner(nil), nil
	case "round-robin":
		return kgo.RoundRobinPartitioner(), nil
	}
	return nil, fmt.Errorf("partitioner must be sticky or round-robin, not %q", s)
}

// runWorkload runs w against tg: topic creation, produce phase with the
// tailing consumer, read-backs, topic deletion.
func runWorkload(ctx context.Context, tg target, w Workload, progress func(string)) (*Result, error) {
	topic := fmt.Sprintf("bench-%s-%s", w.Name, strings.ToLower(rand.Text()[:6]))
	adm, drop, err := tempTopic(ctx, tg, topic, w.Partitions)
	if err != nil {
		return nil, err
	}
	defer drop()

	res := &Result{Target: tg.name}
	before, err := snapshot(ctx, tg)
	if err != nil {
		return nil, err
	}
	if err := producePhase(ctx, tg, w, topic, res, progress); err != nil {
		return nil, err
	}
	afterProduce, err := snapshot(ctx, tg)
	if err != nil {
		return nil, err
	}
	res.Cost = cost(before, afterProduce, res, w.RecordSize)
	if res.Index, err = indexAfter(ctx, tg); err != nil {
		return nil, err
	}
	if !w.ReadBack {
		return res, nil
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	from, to := map[int32]int64{}, map[int32]int64{}
	hot := map[int32]int64{}
	perRecord := int64(w.RecordSize + 70) // value plus record and batch overhead
	ends.Each(func(o kadm.ListedOffset) {
		to[o.Partition] = o.Offset
		hot[o.Partition] = max(0, o.Offset-hotWindow/perRecord)
	})
	starts.Each(func(o kadm.ListedOffset) {
		from[o.Partition] = o.Offset
		hot[o.Partition] = max(hot[o.Partition], o.Offset)
	})
	if res.Cold, err = readRange(ctx, tg, topic, from, to, "cold", 1, progress); err != nil {
		return nil, err
	}
	afterCold, err := snapshot(ctx, tg)
	if err != nil {
		return nil, err
	}
	if b := readBreakdown(afterProduce, afterCold, res.Cold.Bytes); b != "" {
		progress(tg.name + " cold read: " + b)
	}
	if res.Hot, err = readRange(ctx, tg, topic, hot, to, "hot", hotPasses, progress); err != nil {
		return nil, err
	}
	afterHot, err := snapshot(ctx, tg)
	if err != nil {
		return nil, err
	}
	bucketRead(res.Cold, afterProduce, afterCold)
	bucketRead(res.Hot, afterCold, afterHot)
	return res, nil
}

// tempTopic creates topic on tg with an admin client, which it returns
// with drop: drop deletes the topic (which frees kfake's memory; best
// effort) and closes the client.
func tempTopic(ctx context.Context, tg target, topic string, partitions int) (adm *kadm.Client, drop func(), err error) {
	cl, err := tg.client()
	if err != nil {
		return nil, nil, err
	}
	adm = kadm.NewClient(cl)
	if err := createTopic(ctx, adm, topic, partitions); err != nil {
		cl.Close()
		return nil, nil, fmt.Errorf("%s: create topic: %w", tg.name, err)
	}
	return adm, func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		resps, err := adm.DeleteTopics(dctx, topic)
		if err == nil {
			err = resps.Error()
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: delete topic %s: %v\n", tg.name, topic, err)
		}
		cl.Close()
	}, nil
}

// randomValues is a pool of random record values of size bytes:
// incompressible, and no allocation per record.
func randomValues(size int) [][]byte {
	values := make([][]byte, 64)
	for i := range values {
		values[i] = make([]byte, size)
		rand.Read(values[i])
	}
	return values
}

// createTopic creates the topic and waits until every partition has a
// leader, so the produce phase does not time leader placement.
func createTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, int32(partitions), -1, nil, topic)
	if err == nil && resp.Err != nil {
		err = resp.Err
		if resp.ErrMessage != "" {
			err = fmt.Errorf("%w (%s)", err, resp.ErrMessage)
		}
	}
	if err != nil {
		return err
	}
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			if t, ok := md.Topics[topic]; ok && t.Err == nil && len(t.Partitions) == partitions {
				ready := true
				for _, p := range t.Partitions {
					if p.Leader < 0 || p.Err != nil {
						ready = false
						break
					}
				}
				if ready {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("partitions of %s have no leaders after a minute", topic)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func producePhase(ctx context.Context, tg target, w Workload, topic string, res *Result, progress func(string)) error {
	acks, _ := acksOpt(w.Acks)
	codec, _ := compressionOpt(w.Compression)
	part, _ := partitionerOpt(w.Partitioner)
	opts := []kgo.Opt{kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(acks), kgo.ProducerBatchCompression(codec), kgo.RecordPartitioner(part),
		kgo.ProducerLinger(w.Linger), kgo.ProducerBatchMaxBytes(1 << 20)}
	if w.Acks != "all" {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	if w.MaxInflight > 0 {
		opts = append(opts, kgo.MaxProduceRequestsInflightPerBroker(w.MaxInflight))
	}
	values := randomValues(w.RecordSize)

	var (
		sent, acked, failed, consumed atomic.Int64
		errMu                         sync.Mutex
		firstErr                      error
		prodLat, e2eLat               latencies
		lastAck                       atomic.Int64 // unix nanos
	)
	onAck := func(r *kgo.Record, err error) {
		if err != nil {
			failed.Add(1)
			errMu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			errMu.Unlock()
			return
		}
		now := time.Now()
		acked.Add(1)
		lastAck.Store(now.UnixNano())
		prodLat.add(now.Sub(sentAt(r)))
	}

	// The tailing consumer reads every partition directly (no group) from
	// the start; the topic is new, so it sees exactly the workload's records.
	cctx, stopConsumer := context.WithCancel(ctx)
	defer stopConsumer()
	var cwg sync.WaitGroup
	if w.Consume {
		ccl, err := tg.client(kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			return err
		}
		defer ccl.Close()
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for cctx.Err() == nil {
				fs := ccl.PollFetches(cctx)
				now := time.Now()
				fs.EachRecord(func(r *kgo.Record) {
					consumed.Add(1)
					e2eLat.add(now.Sub(sentAt(r)))
				})
			}
		}()
	}

	// Producers: each sends its share of the rate, in 1 ms steps.
	perProducer := 0.0
	quota := int64(math.MaxInt64) // records per producer
	if w.TopicBytes > 0 {
		quota = max(1, w.TopicBytes/int64(w.RecordSize)/int64(w.Producers))
	}
	if w.Rate > 0 {
		perProducer = w.Rate * MB / float64(w.RecordSize) / float64(w.Producers)
	}
	start := time.Now()
	deadline := start.Add(w.Duration)
	pctx, stopProducers := context.WithCancel(ctx)
	defer stopProducers()
	var pwg sync.WaitGroup
	clients := make([]*kgo.Client, w.Producers)
	for i := range clients {
		cl, err := tg.client(opts...)
		if err != nil {
			return err
		}
		defer cl.Close()
		clients[i] = cl
	}
	for _, cl := range clients {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			var n int64
			for pctx.Err() == nil {
				now := time.Now()
				if now.After(deadline) || n >= quota {
					break
				}
				if perProducer > 0 && float64(n) >= now.Sub(start).Seconds()*perProducer {
					time.Sleep(time.Millisecond)
					continue
				}
				var ts [8]byte
				binary.BigEndian.PutUint64(ts[:], uint64(now.UnixNano()))
				r := &kgo.Record{Value: values[n%int64(len(values))], Timestamp: now,
					Headers: []kgo.RecordHeader{{Key: "t", Value: ts[:]}}}
				cl.Produce(pctx, r, onAck)
				sent.Add(1)
				n++
			}
			cl.Flush(context.WithoutCancel(pctx))
		}()
	}

	done := make(chan struct{})
	go func() { pwg.Wait(); close(done) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	report := func(phase string) {
		el := time.Since(start).Seconds()
		p := prodLat.percentiles()
		progress(fmt.Sprintf("%s %-26s %-7s %5.1fs  sent %9d  acked %9d (%7.1f MB/s)  consumed %9d  p99 %.1f ms",
			tg.name, w.Name, phase, el, sent.Load(), acked.Load(), float64(acked.Load())*float64(w.RecordSize)/MB/el, consumed.Load(), p.P99))
	}
wait:
	for {
		select {
		case <-done:
			break wait
		case <-tick.C:
			report("produce")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if w.Consume {
		// Drain: every acked record must reach the consumer.
		drainBy := time.Now().Add(60 * time.Second)
		for consumed.Load() < acked.Load() && time.Now().Before(drainBy) && ctx.Err() == nil {
			select {
			case <-tick.C:
				report("drain")
			case <-time.After(20 * time.Millisecond):
			}
		}
		stopConsumer()
		cwg.Wait()
	}
	res.Sent, res.Acked, res.Failed, res.Consumed = sent.Load(), acked.Load(), failed.Load(), consumed.Load()
	res.Complete = w.Consume && res.Consumed >= res.Acked && res.Acked > 0
	if last := lastAck.Load(); last > 0 {
		res.Seconds = time.Unix(0, last).Sub(start).Seconds()
	}
	if res.Seconds > 0 {
		res.RecordsPerSec = float64(res.Acked) / res.Seconds
		res.MBPerSec = res.RecordsPerSec * float64(w.RecordSize) / MB
	}
	res.ProduceLatency = prodLat.percentiles()
	if w.Consume {
		p := e2eLat.percentiles()
		res.EndToEnd = &p
	}
	errMu.Lock()
	defer errMu.Unlock()
	if res.Acked == 0 && firstErr != nil {
		return fmt.Errorf("%s: nothing was acked: %w", tg.name, firstErr)
	}
	if res.Acked == 0 {
		return fmt.Errorf("%s: nothing was acked", tg.name)
	}
	return nil
}

// sentAt is the send time a producer put in the record's "t" header.
func sentAt(r *kgo.Record) time.Time {
	for _, h := range r.Headers {
		if h.Key == "t" && len(h.Value) == 8 {
			return time.Unix(0, int64(binary.BigEndian.Uint64(h.Value)))
		}
	}
	return r.Timestamp
}

// readRange reads [from, to) of every partition with a fresh client and
// reports the throughput.
//
// It reads the range passes times over (seeking back), with one client:
// Records and Bytes are one pass's, MBPerSec is over every pass. A hot
// read of a few tens of MiB takes a fraction of a second, too little to
// give a rate on a shared machine.
func readRange(ctx context.Context, tg target, topic string, from, to map[int32]int64, phase string, passes int, progress func(string)) (*ReadResult, error) {
	offsets := map[int32]kgo.Offset{}
	remaining := 0
	for p, end := range to {
		if from[p] < end {
			offsets[p] = kgo.NewOffset().At(from[p])
			remaining++
		}
	}
	rr := &ReadResult{BucketShare: -1, CacheShare: -1}
	if remaining == 0 {
		return rr, nil
	}
	cl, err := tg.client(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(8<<20))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	// The rate runs from the first records received: a new client's
	// connections, metadata and fetch session are not the read (and would
	// dominate the hot read's few tens of MiB).
	start := time.Now()
	last := start
	var first time.Time
	var firstBytes, total int64
	partitions := remaining
	for pass := 1; remaining > 0; {
		fs := cl.PollFetches(rctx)
		if rctx.Err() != nil {
			return nil, fmt.Errorf("%s: %s read: %d partitions unfinished: %w", tg.name, phase, remaining, rctx.Err())
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.Canceled) {
				ferr = err
			}
		})
		if ferr != nil {
			return nil, fmt.Errorf("%s: %s read: %w", tg.name, phase, ferr)
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			for _, r := range p.Records {
				if r.Offset >= to[p.Partition] {
					continue
				}
				if pass == 1 {
					rr.Records++
					rr.Bytes += int64(len(r.Value))
				}
				total += int64(len(r.Value))
				if r.Offset == to[p.Partition]-1 {
					remaining--
				}
			}
		})
		if first.IsZero() && total > 0 {
			first, firstBytes = time.Now(), total
		}
		if remaining == 0 && pass < passes {
			pass++
			back := map[int32]kgo.EpochOffset{}
			for p, o := range offsets {
				back[p] = kgo.EpochOffset{Epoch: -1, Offset: o.EpochOffset().Offset}
			}
			cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{topic: back})
			remaining = partitions
		}
		if time.Since(last) > time.Second {
			last = time.Now()
			progress(fmt.Sprintf("%s read %-7s %5.1fs  %d records  %.1f MB/s", tg.name, phase,
				time.Since(start).Seconds(), rr.Records, float64(rr.Bytes)/MB/time.Since(start).Seconds()))
		}
	}
	rr.Seconds = time.Since(start).Seconds()
	rr.MBPerSec = float64(total) / MB / rr.Seconds
	if secs := time.Since(first).Seconds(); total > firstBytes && secs > 0 {
		rr.MBPerSec = float64(total-firstBytes) / MB / secs
	}
	return rr, nil
}
