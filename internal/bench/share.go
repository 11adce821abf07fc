package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Share is the share-group scenario (KIP-932, issue 26): a topic of one
// partition is pre-loaded with Records records of RecordSize bytes, then
// consumed from its start by a share group of each size in Groups (a new
// group each time, its start offset set to 0 with AlterShareGroupOffsets),
// every consumer accepting every record it receives; then a topic of
// ClassicPartitions partitions, pre-loaded with as many records, is
// consumed by a classic consumer group (kgo's JoinGroup/SyncGroup
// protocol, cooperative-sticky) of ClassicConsumers members committing
// the offsets of every poll — the way a work queue is built without share
// groups.
//
// Every consumer fetches with a 500 ms long-poll wait (Kafka's
// fetch.max.wait.ms; kgo's own default is 5 s) and kgo's default 500
// records per share fetch, and loops: poll, accept every record (classic: commit the
// poll's offsets), wait until the broker answered (kgo's FlushAcks, which
// returns once every acknowledgement was sent and its response handled;
// classic: CommitRecords), then poll again. The acknowledgement latency
// of a record is from the poll that returned it to that answer; it
// includes the wait for a share fetch already in flight on the same
// connection (kgo sends acknowledgements between fetches). A group's
// phase ends once every record's acknowledgement was confirmed, or after
// MaxDuration; throughput runs from the first record delivered to the
// last acknowledgement confirmed.
//
// It runs on Eddy and then on kfake, which implements share groups too.
type Share struct {
	Name              string        `json:"name"`
	RecordSize        int           `json:"record_size"`
	Records           int           `json:"records"`            // pre-loaded into each of the two topics
	Groups            []int         `json:"share_groups"`       // consumers of each share group, in turn
	ClassicPartitions int           `json:"classic_partitions"` // of the classic group's topic
	ClassicConsumers  int           `json:"classic_consumers"`  // members of the classic group (0: none)
	MaxDuration       time.Duration `json:"max_duration"`       // of each group's consume phase, from its first delivery
}

// ShareName names the scenario in the standard set (for --only).
const ShareName = "share-groups"

// StandardShare is the scenario `make bench` runs: share groups of 1, 4
// and 16 consumers on one partition, then a classic group of 16 consumers
// on 16 partitions, each over 120,000 records of 1 KiB (120 MB), for at most
// 8 s each: about a minute on Eddy and kfake together on a quiet 2-core
// machine (the share groups of Eddy's defaults, 2,000 record locks per
// share-partition and 500 records per fetch, rarely finish in 8 s).
func StandardShare(scale float64) Share {
	return Share{Name: ShareName, RecordSize: 1024, Records: max(100, int(120_000*scale)), Groups: []int{1, 4, 16},
		ClassicPartitions: 16, ClassicConsumers: 16, MaxDuration: time.Duration(max(2, 8*scale) * float64(time.Second))}
}

// Validate reports the first invalid setting.
func (x Share) Validate() error {
	switch {
	case x.RecordSize < 1 || x.RecordSize > 1<<20:
		return fmt.Errorf("bench: %s: record size must be 1 B to 1 MiB", x.Name)
	case x.Records < 1:
		return fmt.Errorf("bench: %s: records must be at least 1", x.Name)
	case len(x.Groups) == 0 && x.ClassicConsumers == 0:
		return fmt.Errorf("bench: %s: no share group and no classic group", x.Name)
	case x.ClassicConsumers < 0 || x.ClassicConsumers > 0 && x.ClassicPartitions < 1:
		return fmt.Errorf("bench: %s: classic consumers must not be negative, and the classic topic needs a partition", x.Name)
	case x.MaxDuration < time.Second:
		return fmt.Errorf("bench: %s: max duration must be at least 1s", x.Name)
	}
	for _, n := range x.Groups {
		if n < 1 {
			return fmt.Errorf("bench: %s: a share group needs at least 1 consumer", x.Name)
		}
	}
	return nil
}

// Describe is a one-line summary for the workloads table.
func (x Share) Describe() string {
	var gs []string
	for _, n := range x.Groups {
		gs = append(gs, fmt.Sprint(n))
	}
	s := fmt.Sprintf("%d records of %s pre-loaded into 1 partition, consumed from the start by share groups of %s consumers in turn (kgo, 500 ms fetch wait, 500 records per share fetch), each accepting every record and waiting for the broker's answer (FlushAcks) before polling again",
		x.Records, fmtSize(x.RecordSize), strings.Join(gs, ", "))
	if x.ClassicConsumers > 0 {
		s += fmt.Sprintf("; then as many records in %d partitions consumed by a classic group (JoinGroup/SyncGroup, cooperative-sticky) of %d consumers, each committing every poll's offsets (CommitRecords) before polling again",
			x.ClassicPartitions, x.ClassicConsumers)
	}
	return s + fmt.Sprintf("; each group for at most %s from its first delivery", x.MaxDuration)
}

// ShareRun is one group's consume phase on one target.
type ShareRun struct {
	Target     string `json:"target"`
	Kind       string `json:"kind"` // share or classic
	Consumers  int    `json:"consumers"`
	Partitions int    `json:"partitions"`
	Records    int64  `json:"records"` // in the topic
	// Accepted are the distinct records whose acknowledgement (classic:
	// offset commit) the broker confirmed.
	Accepted   int64 `json:"records_accepted"`
	Complete   bool  `json:"complete"`   // every record accepted
	Deliveries int64 `json:"deliveries"` // records handed to the consumers, repeats included
	// Duplicates are deliveries of a record delivered before; Redelivered
	// are deliveries whose broker delivery count was above 1 (share only).
	Duplicates  int64 `json:"duplicates"`
	Redelivered int64 `json:"redelivered"`
	// AckFailures are acknowledgements of a partition (classic: commits)
	// the broker refused or did not answer in 30 s.
	AckFailures int64 `json:"ack_failures"`
	// ConsumersWithRecords are the members that received records.
	ConsumersWithRecords int `json:"consumers_with_records"`
	// Startup is from the consumers' creation to the first delivery
	// (joining the group, the assignment); Seconds from the first
	// delivery to the last confirmation.
	Startup       float64     `json:"startup_seconds"`
	Seconds       float64     `json:"seconds"`
	RecordsPerSec float64     `json:"records_per_sec"` // accepted
	MBPerSec      float64     `json:"mb_per_sec"`      // accepted value bytes
	Ack           Percentiles `json:"ack_ms"`          // delivery to confirmation, one sample per record
}

// ShareResult is the scenario on Eddy and on the peer.
type ShareResult struct {
	Scenario Share      `json:"scenario"`
	Eddy     []ShareRun `json:"eddy"`
	Peer     []ShareRun `json:"kfake,omitempty"`
}

// shareLedger follows every record of a topic through one group's phase:
// deliveries and confirmations per offset.
type shareLedger struct {
	delivered [][]atomic.Int32 // per partition, per offset
	confirmed [][]atomic.Bool
	total     int64

	deliveries, duplicates, redelivered, accepted, ackFailures atomic.Int64
	first, last                                                atomic.Int64 // unix nanos: first delivery, last confirmation
	ack                                                        latencies
}

func newShareLedger(ends map[int32]int64) *shareLedger {
	l := &shareLedger{delivered: make([][]atomic.Int32, len(ends)), confirmed: make([][]atomic.Bool, len(ends))}
	for p, end := range ends {
		l.delivered[p] = make([]atomic.Int32, end)
		l.confirmed[p] = make([]atomic.Bool, end)
		l.total += end
	}
	return l
}

// deliver records the delivery of recs at now.
func (l *shareLedger) deliver(recs []*kgo.Record, now time.Time, share bool) {
	l.first.CompareAndSwap(0, now.UnixNano())
	for _, r := range recs {
		l.deliveries.Add(1)
		if int(r.Partition) < len(l.delivered) && r.Offset < int64(len(l.delivered[r.Partition])) {
			if l.delivered[r.Partition][r.Offset].Add(1) > 1 {
				l.duplicates.Add(1)
			}
		}
		if share && r.DeliveryCount() > 1 {
			l.redelivered.Add(1)
		}
	}
}

// confirm records that the acknowledgements of recs delivered at at were
// confirmed now, except those of the partitions in failed.
func (l *shareLedger) confirm(recs []*kgo.Record, at, now time.Time, failed map[int32]bool) {
	d := now.Sub(at)
	for _, r := range recs {
		if failed[r.Partition] {
			continue
		}
		l.ack.add(d)
		if int(r.Partition) < len(l.confirmed) && r.Offset < int64(len(l.confirmed[r.Partition])) &&
			l.confirmed[r.Partition][r.Offset].CompareAndSwap(false, true) {
			l.accepted.Add(1)
		}
	}
	l.last.Store(now.UnixNano())
}

// preload creates topic with partitions and fills it with n records as
// fast as one producer can; it returns the partitions' end offsets.
func preload(ctx context.Context, tg target, adm *kadm.Client, topic string, n, size int, progress func(string)) (map[int32]int64, error) {
	cl, err := tg.client(kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	values := randomValues(size)
	var failed atomic.Int64
	var firstErr atomic.Pointer[error]
	start := time.Now()
	last := start
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Value: values[i%len(values)]}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, &err)
			}
		})
		if time.Since(last) > time.Second {
			last = time.Now()
			progress(fmt.Sprintf("%s pre-load %-24s %5.1fs  %d of %d records", tg.name, topic, time.Since(start).Seconds(), i, n))
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return nil, err
	}
	if p := firstErr.Load(); p != nil {
		return nil, fmt.Errorf("%s: pre-load: %d of %d records failed: %w", tg.name, failed.Load(), n, *p)
	}
	// A partition may change leader meanwhile (NOT_LEADER_FOR_PARTITION).
	var ends kadm.ListedOffsets
	if err := retryRetriable(ctx, func(ctx context.Context) (err error) {
		if ends, err = adm.ListEndOffsets(ctx, topic); err == nil {
			err = ends.Error()
		}
		return err
	}); err != nil {
		return nil, fmt.Errorf("%s: pre-load: end offsets: %w", tg.name, err)
	}
	out := map[int32]int64{}
	var sum int64
	ends.Each(func(o kadm.ListedOffset) {
		out[o.Partition] = o.Offset
		sum += o.Offset
	})
	if sum != int64(n) {
		return nil, fmt.Errorf("%s: pre-load: %d records in %s, want %d", tg.name, sum, topic, n)
	}
	return out, nil
}

// resetShareGroup makes group start topic at offset 0. A share group
// starts where share.auto.offset.reset says, latest by default; a fresh
// coordinator may not be placed yet, so retriable errors are retried.
func resetShareGroup(ctx context.Context, adm *kadm.Client, group, topic string, partitions int32) error {
	offsets := kadm.Offsets{}
	for p := range partitions {
		offsets.Add(kadm.Offset{Topic: topic, Partition: p, At: 0, LeaderEpoch: -1})
	}
	if err := retryRetriable(ctx, func(ctx context.Context) error {
		resp, err := adm.AlterShareGroupOffsets(ctx, group, offsets)
		if err == nil {
			err = resp.Error()
		}
		return err
	}); err != nil {
		return fmt.Errorf("reset share group %s to offset 0: %w", group, err)
	}
	return nil
}

// retryRetriable runs fn again, every 200 ms for up to 30 s, while it
// fails with an error Kafka calls retriable (a leader or coordinator
// moving), as a client would; fn's context ends with the 30 s.
func retryRetriable(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		err := fn(ctx)
		if err == nil || !kerr.IsRetriable(err) || sleepCtx(ctx, 200*time.Millisecond) != nil {
			return err
		}
	}
}

// shareStartup bounds the time from a group's consumers' creation to the
// first record delivered: joining the group and its assignment.
const shareStartup = time.Minute

// runShareGroup runs one group's consume phase: n share consumers (or,
// classic, n members of a consumer group) read topic until every record
// of ends was accepted or max passed.
func runShareGroup(ctx context.Context, tg target, x Share, topic, group string, classic bool, n int, ends map[int32]int64, progress func(string)) (*ShareRun, error) {
	run := &ShareRun{Target: tg.name, Kind: "share", Consumers: n, Partitions: len(ends)}
	if classic {
		run.Kind = "classic"
	}
	l := newShareLedger(ends)
	run.Records = l.total

	cctx, stop := context.WithCancel(ctx)
	defer stop()
	got := make([]atomic.Int64, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		var (
			fmu    sync.Mutex
			failed = map[int32]bool{} // partitions whose acknowledgements failed since the poll
		)
		opts := []kgo.Opt{kgo.ConsumeTopics(topic), kgo.FetchMaxWait(500 * time.Millisecond)}
		if classic {
			opts = append(opts, kgo.ConsumerGroup(group), kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		} else {
			opts = append(opts, kgo.ShareGroup(group), kgo.ShareAckCallback(func(_ *kgo.Client, rs kgo.ShareAckResults) {
				fmu.Lock()
				defer fmu.Unlock()
				for _, r := range rs {
					if r.Err != nil {
						l.ackFailures.Add(1)
						failed[r.Partition] = true
					}
				}
			}))
		}
		cl, err := tg.client(opts...)
		if err != nil {
			stop()
			wg.Wait()
			return nil, err
		}
		wg.Go(func() {
			defer cl.Close()
			var err error
			for cctx.Err() == nil {
				fs := cl.PollFetches(cctx)
				now := time.Now()
				recs := fs.Records()
				var ferr error
				fs.EachError(func(_ string, _ int32, err error) {
					if !errors.Is(err, context.Canceled) {
						ferr = err
					}
				})
				if ferr != nil && cctx.Err() == nil && len(recs) == 0 {
					// A fetch error is the broker's weather (a moved
					// leader, a coordinator not yet placed): kgo retries.
					progress(fmt.Sprintf("%s %s consumer %d: %v", tg.name, group, i, ferr))
				}
				if len(recs) == 0 {
					if classic {
						cl.AllowRebalance()
					}
					continue
				}
				got[i].Add(int64(len(recs)))
				l.deliver(recs, now, !classic)
				// The confirmation is not cancelled: an acknowledgement
				// sent must be answered to be counted or refused.
				actx, cancel := context.WithTimeout(context.WithoutCancel(cctx), 30*time.Second)
				if classic {
					err = cl.CommitRecords(actx, recs...)
				} else {
					fmu.Lock()
					clear(failed)
					fmu.Unlock()
					for _, r := range recs {
						r.Ack(kgo.AckAccept)
					}
					err = cl.FlushAcks(actx)
				}
				cancel()
				if err != nil {
					// A commit refused in a rebalance, or an answer that
					// never came: counted, and the records go to whoever
					// owns them next (share: when their locks expire).
					l.ackFailures.Add(1)
					progress(fmt.Sprintf("%s %s consumer %d: acknowledging %d records: %v", tg.name, group, i, len(recs), err))
				} else {
					fmu.Lock()
					if classic {
						l.confirm(recs, now, time.Now(), nil)
					} else {
						l.confirm(recs, now, time.Now(), failed)
					}
					fmu.Unlock()
				}
				if classic {
					cl.AllowRebalance()
				}
				if l.accepted.Load() >= l.total {
					stop()
				}
			}
		})
	}

	// The phase is bounded from the first delivery, so that the joining
	// of a classic group (an initial rebalance delay) does not eat it.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	label := fmt.Sprintf("%s-%d", run.Kind, n)
	var startupErr error
	for ticks := 1; cctx.Err() == nil; ticks++ {
		<-tick.C
		first := l.first.Load()
		if first != 0 && time.Since(time.Unix(0, first)) > x.MaxDuration {
			break
		}
		if first == 0 && time.Since(start) > shareStartup {
			startupErr = fmt.Errorf("%s: %s: no record delivered in %s", tg.name, label, shareStartup)
			break
		}
		if ticks%10 == 0 {
			p := l.ack.percentiles()
			progress(fmt.Sprintf("%s %-26s %5.1fs  accepted %7d of %d  duplicates %d  ack p99 %.1f ms",
				tg.name, x.Name+" "+label, time.Since(start).Seconds(), l.accepted.Load(), l.total, l.duplicates.Load(), p.P99))
		}
	}
	stop()
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if startupErr != nil {
		return nil, startupErr
	}
	run.Accepted, run.Deliveries, run.Duplicates = l.accepted.Load(), l.deliveries.Load(), l.duplicates.Load()
	run.Redelivered, run.AckFailures = l.redelivered.Load(), l.ackFailures.Load()
	run.Complete = run.Accepted == run.Records
	for i := range got {
		if got[i].Load() > 0 {
			run.ConsumersWithRecords++
		}
	}
	if run.Accepted == 0 {
		return nil, fmt.Errorf("%s: %s: no record accepted in %s", tg.name, label, x.MaxDuration)
	}
	first := time.Unix(0, l.first.Load())
	run.Startup = first.Sub(start).Seconds()
	run.Seconds = time.Unix(0, l.last.Load()).Sub(first).Seconds()
	if run.Seconds > 0 {
		run.RecordsPerSec = float64(run.Accepted) / run.Seconds
		run.MBPerSec = run.RecordsPerSec * float64(x.RecordSize) / MB
	}
	run.Ack = l.ack.percentiles()
	return run, nil
}

// runShare runs the scenario against tg: both pre-loads, then the share
// groups one after the other, then the classic group.
func runShare(ctx context.Context, tg target, x Share, progress func(string)) ([]ShareRun, error) {
	suffix := strings.ToLower(rand.Text()[:6])
	var out []ShareRun
	if len(x.Groups) > 0 {
		topic := fmt.Sprintf("bench-%s-%s", x.Name, suffix)
		adm, drop, err := tempTopic(ctx, tg, topic, 1)
		if err != nil {
			return nil, err
		}
		defer drop()
		ends, err := preload(ctx, tg, adm, topic, x.Records, x.RecordSize, progress)
		if err != nil {
			return nil, err
		}
		for _, n := range x.Groups {
			group := fmt.Sprintf("%s-%d", topic, n)
			if err := resetShareGroup(ctx, adm, group, topic, 1); err != nil {
				return nil, fmt.Errorf("%s: %w", tg.name, err)
			}
			r, err := runShareGroup(ctx, tg, x, topic, group, false, n, ends, progress)
			if err != nil {
				return nil, err
			}
			out = append(out, *r)
		}
	}
	if x.ClassicConsumers > 0 {
		topic := fmt.Sprintf("bench-%s-classic-%s", x.Name, suffix)
		adm, drop, err := tempTopic(ctx, tg, topic, x.ClassicPartitions)
		if err != nil {
			return nil, err
		}
		defer drop()
		ends, err := preload(ctx, tg, adm, topic, x.Records, x.RecordSize, progress)
		if err != nil {
			return nil, err
		}
		r, err := runShareGroup(ctx, tg, x, topic, topic, true, x.ClassicConsumers, ends, progress)
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, nil
}

const shareTitle = "Share groups"

// table lays the scenario out: a row per group and target.
func (r *ShareResult) table() *table {
	t := &table{title: shareTitle + " (KIP-932; ack = from the poll that delivered a record to the broker's answer to its acknowledgement, classic: to its offset commit; ms)",
		header: []string{"group", "consumers", "partitions", "target", "MB/s", "records/s", "ack p50", "ack p99", "redeliveries", "accepted", "start-up s"}}
	for _, runs := range [][]ShareRun{r.Eddy, r.Peer} {
		for _, x := range runs {
			acc := fmt.Sprintf("all %d", x.Accepted)
			if !x.Complete {
				acc = fmt.Sprintf("%d of %d", x.Accepted, x.Records)
			}
			if x.AckFailures > 0 {
				acc += fmt.Sprintf(", %d refused", x.AckFailures)
			}
			t.add(x.Kind, fmt.Sprint(x.Consumers), fmt.Sprint(x.Partitions), x.Target, f1(x.MBPerSec), fmt.Sprintf("%.0f", x.RecordsPerSec),
				f1(x.Ack.P50), f1(x.Ack.P99), fmt.Sprint(x.Duplicates), acc, f1(x.Startup))
		}
	}
	return t
}

// Sentence defines the workload and gives Eddy's share-group result.
func (r *ShareResult) Sentence() string {
	x := r.Scenario
	s := fmt.Sprintf("%d records of %s were pre-loaded into one partition and consumed from the start by a share group of each size, every consumer accepting every record and waiting for the broker to answer the acknowledgement (kgo's FlushAcks) before its next poll",
		x.Records, fmtSize(x.RecordSize))
	if x.ClassicConsumers > 0 {
		s += fmt.Sprintf("; the classic group read as many records from %d partitions with %d members, committing each poll's offsets before the next", x.ClassicPartitions, x.ClassicConsumers)
	}
	s += fmt.Sprintf(", each group for at most %s from its first delivery (accepted says how far it got). kfake implements share groups too and runs the same. Redeliveries are records delivered more than once.", x.MaxDuration)
	var best *ShareRun
	for i := range r.Eddy {
		if e := &r.Eddy[i]; e.Kind == "share" && (best == nil || e.MBPerSec > best.MBPerSec) {
			best = e
		}
	}
	if best != nil {
		s += fmt.Sprintf(" Eddy's best share group, of %d, accepted %s MB/s (%.0f records/s) with an acknowledgement latency of %s ms p50 and %s ms p99.",
			best.Consumers, f1(best.MBPerSec), best.RecordsPerSec, f1(best.Ack.P50), f1(best.Ack.P99))
	}
	return s
}
