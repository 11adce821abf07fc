package chaos

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The transactional part of the workload: Copiers consume-transform-
// produce the topic into Topic+eosSuffix in transactions that also commit
// their group's offsets (franz-go's GroupTransactSession), as a Kafka
// Streams application with exactly-once would. Each output record names
// its input: "<partition>/<offset>/<value>".
const (
	eosSuffix = "-eos"
	eosGroup  = "chaos-eos"
)

// EOS counts what the copiers did.
type EOS struct {
	Committed atomic.Int64 // transactions committed
	Aborted   atomic.Int64 // transactions that ended without a commit
	Restarts  atomic.Int64 // sessions replaced after an error
}

// startCopier runs transactional copier i until ctx ends.
func (w *Workload) startCopier(ctx context.Context, i int) {
	newSession := func() (*kgo.GroupTransactSession, error) {
		return kgo.NewGroupTransactSession(append(w.clientOpts(),
			kgo.ConsumerGroup(eosGroup), kgo.ConsumeTopics(w.cfg.Topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.RequireStableFetchOffsets(),
			kgo.TransactionalID(fmt.Sprintf("chaos-eos-%d", i)), kgo.TransactionTimeout(30*time.Second),
			kgo.DefaultProduceTopic(w.cfg.Topic+eosSuffix), kgo.RecordRetries(1<<30),
			kgo.SessionTimeout(20*time.Second), kgo.FetchMaxWait(500*time.Millisecond))...)
	}
	w.consuming.Go(func() {
		var sess *kgo.GroupTransactSession
		defer func() {
			if sess != nil {
				sess.Close()
			}
		}()
		for ctx.Err() == nil {
			if sess == nil {
				var err error
				if sess, err = newSession(); err != nil {
					sess = nil
					time.Sleep(200 * time.Millisecond)
					continue
				}
			}
			fs := sess.PollRecords(ctx, 1000)
			if ctx.Err() != nil {
				return
			}
			if fs.Empty() {
				continue
			}
			// An error Begin or End returns is not retryable in
			// franz-go: the session is replaced, and the new one's
			// InitProducerID fences the old and aborts what it left.
			if err := sess.Begin(); err != nil {
				w.eos.Restarts.Add(1)
				sess.Close()
				sess = nil
				continue
			}
			fs.EachRecord(func(r *kgo.Record) {
				v := strconv.Itoa(int(r.Partition)) + "/" + strconv.FormatInt(r.Offset, 10) + "/" + string(r.Value)
				sess.Produce(ctx, &kgo.Record{Key: r.Key, Value: []byte(v)}, nil)
			})
			ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			committed, err := sess.End(ectx, kgo.TryCommit)
			cancel()
			if committed {
				w.eos.Committed.Add(1)
			} else {
				w.eos.Aborted.Add(1)
			}
			if err != nil {
				w.eos.Restarts.Add(1)
				sess.Close()
				sess = nil
			}
		}
	})
}

// CheckEOS checks exactly-once across the copiers: with the input log in,
// the output read back with read_committed and the offsets the copiers'
// group committed, every input record below its partition's committed
// offset is in the output exactly once with its value, and nothing at or
// above it is (output and offsets commit together or not at all).
func CheckEOS(in, out Log, committed map[int32]int64) []Violation {
	var vs []Violation
	add := func(p int32, o int64, format string, args ...any) {
		vs = append(vs, Violation{Kind: KindEOS, Partition: p, Offset: o, At: time.Now(), Detail: fmt.Sprintf(format, args...)})
	}
	inValue := map[int32]map[int64]string{}
	for p, rs := range in.Records {
		inValue[p] = make(map[int64]string, len(rs))
		for _, r := range rs {
			inValue[p][r.Offset] = r.Value
		}
	}
	seen := map[int32]map[int64]int{}
	for op, rs := range out.Records {
		for _, r := range rs {
			parts := strings.SplitN(r.Value, "/", 3)
			if len(parts) != 3 {
				add(op, r.Offset, "output record %q names no input", r.Value)
				continue
			}
			p64, err1 := strconv.ParseInt(parts[0], 10, 32)
			o, err2 := strconv.ParseInt(parts[1], 10, 64)
			if err1 != nil || err2 != nil {
				add(op, r.Offset, "output record %q names no input", r.Value)
				continue
			}
			p := int32(p64)
			if seen[p] == nil {
				seen[p] = map[int64]int{}
			}
			seen[p][o]++
			if seen[p][o] == 2 {
				add(p, o, "input copied twice into the committed output (output partition %d offset %d)", op, r.Offset)
			}
			if v, ok := inValue[p][o]; !ok || v != parts[2] {
				add(p, o, "output holds %q for the input there, the input log %q", parts[2], v)
			}
			if o >= committed[p] {
				add(p, o, "output committed for input at or above the group's committed offset %d", committed[p])
			}
		}
	}
	for p, c := range committed {
		for _, r := range in.Records[p] {
			if r.Offset < c && seen[p][r.Offset] == 0 {
				add(p, r.Offset, "input below the group's committed offset %d is not in the committed output", c)
			}
		}
	}
	return vs
}

// committedOffsets reads the copiers' group's committed offsets.
func committedOffsets(ctx context.Context, seeds []string, topic string) (map[int32]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(ctx, eosGroup)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("chaos: offsets of %s: %w", eosGroup, err)
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic {
			out[o.Partition] = o.At
		}
	})
	return out, nil
}

// readCommitted reads every partition of topic with read_committed until
// nothing new arrived for quiet (transaction markers leave the last
// offsets without a record, so the read cannot stop at the end offset).
func readCommitted(ctx context.Context, seeds []string, topic string, quiet time.Duration) (Log, error) {
	log := Log{Records: map[int32][]Record{}, End: map[int32]int64{}}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return log, err
	}
	defer cl.Close()
	last := time.Now()
	for time.Since(last) < quiet {
		pctx, cancel := context.WithTimeout(ctx, quiet)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return log, fmt.Errorf("chaos: read back %s: %w", topic, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			recs := log.Records[r.Partition]
			if n := len(recs); n > 0 && recs[n-1].Offset >= r.Offset {
				return // a re-fetch
			}
			log.Records[r.Partition] = append(recs, Record{Offset: r.Offset, Value: string(r.Value)})
			last = time.Now()
		})
	}
	return log, nil
}
