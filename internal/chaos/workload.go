package chaos

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Value prefixes: which kind of producer wrote a record.
const (
	valueAcksAll = "all" // idempotent, acks=all
	valueAcksOne = "one" // acks=1, not idempotent
)

// WorkloadConfig shapes the traffic of a run.
type WorkloadConfig struct {
	Seeds      []string
	Topic      string
	Partitions int32
	Group      string

	AcksAllProducers int // idempotent acks=all producers
	AcksOneProducers int // acks=1 producers
	GroupMembers     int // members of one consumer group that commit what they read
	TailReaders      int // readers from the start of every partition, without a group
	Copiers          int // transactional consume-transform-produce sessions into Topic+"-eos" (eos.go)
	Rate             int // records per second per producer

	// ProduceTimeout is the producers' produce request timeout (kgo's
	// default when 0): the broker answers REQUEST_TIMED_OUT when the
	// flush takes longer, and the client retries the batch.
	ProduceTimeout time.Duration
}

// Workload runs producers and consumers against a cluster and records
// what they see in a History. Stop ends it.
type Workload struct {
	cfg WorkloadConfig
	h   *History

	stopProduce context.CancelFunc
	producing   sync.WaitGroup
	producers   []*kgo.Client

	stopConsume context.CancelFunc
	consuming   sync.WaitGroup
	consumers   []*kgo.Client

	eos EOS
}

// StartWorkload creates the topic and starts the clients.
func StartWorkload(ctx context.Context, cfg WorkloadConfig, h *History) (*Workload, error) {
	admin, err := kgo.NewClient(kgo.SeedBrokers(cfg.Seeds...))
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	topics := []string{cfg.Topic}
	if cfg.Copiers > 0 {
		topics = append(topics, cfg.Topic+eosSuffix)
	}
	for _, topic := range topics {
		resp, err := kadm.NewClient(admin).CreateTopic(ctx, cfg.Partitions, -1, nil, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			return nil, fmt.Errorf("chaos: create topic %s: %w", topic, err)
		}
	}
	w := &Workload{cfg: cfg, h: h}
	pctx, stopP := context.WithCancel(context.Background())
	cctx, stopC := context.WithCancel(context.Background())
	w.stopProduce, w.stopConsume = stopP, stopC
	for i := range cfg.AcksAllProducers {
		if err := w.startProducer(pctx, fmt.Sprintf("%s-p%d", valueAcksAll, i), true); err != nil {
			w.Stop(ctx)
			return nil, err
		}
	}
	for i := range cfg.AcksOneProducers {
		if err := w.startProducer(pctx, fmt.Sprintf("%s-p%d", valueAcksOne, i), false); err != nil {
			w.Stop(ctx)
			return nil, err
		}
	}
	for i := range cfg.GroupMembers {
		if err := w.startConsumer(cctx, fmt.Sprintf("member-%d", i), true); err != nil {
			w.Stop(ctx)
			return nil, err
		}
	}
	for i := range cfg.TailReaders {
		if err := w.startConsumer(cctx, fmt.Sprintf("tail-%d", i), false); err != nil {
			w.Stop(ctx)
			return nil, err
		}
	}
	for i := range cfg.Copiers {
		w.startCopier(cctx, i)
	}
	return w, nil
}

func (w *Workload) clientOpts() []kgo.Opt {
	return []kgo.Opt{kgo.SeedBrokers(w.cfg.Seeds...), kgo.MetadataMinAge(250 * time.Millisecond),
		kgo.RetryTimeout(2 * time.Minute)}
}

// startProducer produces name-1, name-2, ... at the configured rate.
func (w *Workload) startProducer(ctx context.Context, name string, acksAll bool) error {
	opts := append(w.clientOpts(), kgo.DefaultProduceTopic(w.cfg.Topic),
		kgo.RecordRetries(1<<30), kgo.RecordDeliveryTimeout(3*time.Minute), kgo.ProducerLinger(5*time.Millisecond))
	if !acksAll {
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	}
	if w.cfg.ProduceTimeout > 0 {
		opts = append(opts, kgo.ProduceRequestTimeout(w.cfg.ProduceTimeout))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	w.producers = append(w.producers, cl)
	every := time.Second / time.Duration(max(w.cfg.Rate, 1))
	w.producing.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for seq := int64(1); ; seq++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			val := name + "-" + strconv.FormatInt(seq, 10)
			r := &kgo.Record{Key: []byte(strconv.FormatInt(seq%16, 10)), Value: []byte(val)}
			sent := time.Now()
			// Not ctx: it only ends the loop. StopProducing cancels it
			// before Flush, and a record's own canceled context would fail
			// the records still buffered, counting them as failed for good
			// though nothing went wrong.
			cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
				if err != nil {
					w.h.fail(acksAll, err)
					return
				}
				w.h.ack(Ack{Value: val, Partition: r.Partition, Offset: r.Offset,
					AcksAll: acksAll, Sent: sent, At: time.Now()})
			})
		}
	})
	return nil
}

// startConsumer runs a group member (group) or a tailing reader. A member
// commits what each poll handed it before it lets a rebalance proceed, and
// records the commits the coordinator confirmed.
func (w *Workload) startConsumer(ctx context.Context, name string, group bool) error {
	opts := append(w.clientOpts(), kgo.ConsumeTopics(w.cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
	if group {
		opts = append(opts, kgo.ConsumerGroup(w.cfg.Group), kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
			kgo.SessionTimeout(20*time.Second))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	w.consumers = append(w.consumers, cl)
	w.consuming.Go(func() {
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			now := time.Now()
			var reads []Read
			var recs []*kgo.Record
			fs.EachPartition(func(p kgo.FetchTopicPartition) {
				for _, r := range p.Records {
					reads = append(reads, Read{Reader: name, Group: group, Partition: r.Partition, Offset: r.Offset,
						Value: string(r.Value), HWM: p.HighWatermark, At: now})
					recs = append(recs, r)
				}
			})
			w.h.read(reads)
			if group {
				if len(recs) > 0 {
					w.commit(ctx, cl, name, recs)
				}
				cl.AllowRebalance()
			}
		}
	})
	return nil
}

func (w *Workload) commit(ctx context.Context, cl *kgo.Client, member string, recs []*kgo.Record) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := cl.CommitRecords(cctx, recs...); err != nil {
		return // not confirmed: redelivery is allowed
	}
	now := time.Now()
	next := map[int32]int64{}
	for _, r := range recs {
		next[r.Partition] = max(next[r.Partition], r.Offset+1)
	}
	var cs []Commit
	for p, o := range next {
		cs = append(cs, Commit{Member: member, Partition: p, Offset: o, At: now})
	}
	w.h.commit(cs)
}

// StopProducing stops the producers and waits until every record in
// flight was acknowledged or failed for good (at most until ctx ends).
func (w *Workload) StopProducing(ctx context.Context) error {
	w.stopProduce()
	w.producing.Wait()
	var errs []error
	for _, cl := range w.producers {
		errs = append(errs, cl.Flush(ctx))
		cl.Close()
	}
	w.producers = nil
	return errors.Join(errs...)
}

// StopConsuming stops the consumers (a member leaves its group).
func (w *Workload) StopConsuming() {
	w.stopConsume()
	w.consuming.Wait()
	for _, cl := range w.consumers {
		cl.Close()
	}
	w.consumers = nil
}

// Stop stops everything.
func (w *Workload) Stop(ctx context.Context) error {
	err := w.StopProducing(ctx)
	w.StopConsuming()
	return err
}

// ReadBack reads every partition of topic from its start to the high
// watermark it had when ReadBack began.
func ReadBack(ctx context.Context, seeds []string, topic string) (Log, error) {
	log := Log{Records: map[int32][]Record{}, End: map[int32]int64{}}
	admin, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return log, err
	}
	defer admin.Close()
	ends, err := kadm.NewClient(admin).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return log, fmt.Errorf("chaos: end offsets of %s: %w", topic, err)
	}
	want := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		log.End[o.Partition] = o.Offset
		if o.Offset > 0 {
			want[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if len(want) == 0 {
		return log, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: want}),
		kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return log, err
	}
	defer cl.Close()
	left := len(want)
	for left > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return log, fmt.Errorf("chaos: read back %s: %w (%d partitions unfinished)", topic, ctx.Err(), left)
		}
		fs.EachRecord(func(r *kgo.Record) {
			recs := log.Records[r.Partition]
			if n := len(recs); r.Offset >= log.End[r.Partition] || n > 0 && recs[n-1].Offset >= r.Offset {
				return // past the end, or a re-fetch
			}
			log.Records[r.Partition] = append(recs, Record{Offset: r.Offset, Value: string(r.Value)})
			if r.Offset == log.End[r.Partition]-1 {
				left--
			}
		})
	}
	return log, nil
}
