package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func newClient(t testing.TB, s *stack.Stack, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.Bootstrap()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func createTopic(t testing.TB, cl *kgo.Client, name string, partitions int32, configs map[string]*string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, -1, configs, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", name, err, resp.Err)
	}
}

// consumeAll reads every partition of topic from the start until it has
// want records or the deadline passes.
func consumeAll(t testing.TB, s *stack.Stack, topic string, want int) []*kgo.Record {
	t.Helper()
	out, ok := tryConsumeAll(t, s, topic, want)
	if !ok {
		t.Fatalf("consumed %d of %d records before the deadline", len(out), want)
	}
	return out
}

func tryConsumeAll(t testing.TB, s *stack.Stack, topic string, want int) ([]*kgo.Record, bool) {
	t.Helper()
	cl := newClient(t, s, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return out, false
		}
		fs.EachError(func(tp string, p int32, err error) { t.Logf("fetch error %s/%d: %v", tp, p, err) })
		out = append(out, fs.Records()...)
	}
	return out, true
}

// TestFranzGoRoundTrip: a default (idempotent, acks=all) franz-go producer
// writes 200,000 records over 16 partitions for each compression codec; a
// consumer reads every one back in order with contiguous offsets and intact
// keys, values, headers and timestamps.
func TestFranzGoRoundTrip(t *testing.T) {
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t)})
	n := 200_000
	if testing.Short() {
		n = 20_000
	}
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for _, name := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run(name, func(t *testing.T) {
			topic := "roundtrip-" + name
			prod := newClient(t, s, kgo.ProducerBatchCompression(codecs[name]), kgo.DefaultProduceTopic(topic))
			createTopic(t, prod, topic, 16, nil)
			base := time.Now().Add(-time.Hour).UnixMilli()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			errs := make(chan error, 1)
			for i := range n {
				r := &kgo.Record{
					Key:       []byte("key-" + strconv.Itoa(i)),
					Value:     []byte(fmt.Sprintf("value-%d-%s", i, name)),
					Headers:   []kgo.RecordHeader{{Key: "i", Value: []byte(strconv.Itoa(i))}, {Key: "codec", Value: []byte(name)}},
					Timestamp: time.UnixMilli(base + int64(i)),
				}
				prod.Produce(ctx, r, func(_ *kgo.Record, err error) {
					if err != nil {
						select {
						case errs <- err:
						default:
						}
					}
				})
			}
			if err := prod.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-errs:
				t.Fatalf("produce: %v", err)
			default:
			}

			recs := consumeAll(t, s, topic, n)
			if len(recs) != n {
				t.Fatalf("got %d records, want %d", len(recs), n)
			}
			next := map[int32]int64{}
			lastI := map[int32]int{}
			seen := make([]bool, n)
			for _, r := range recs {
				if r.Offset != next[r.Partition] {
					t.Fatalf("partition %d: offset %d, want %d (offsets must be contiguous)", r.Partition, r.Offset, next[r.Partition])
				}
				next[r.Partition]++
				if len(r.Headers) != 2 || r.Headers[0].Key != "i" || string(r.Headers[1].Value) != name {
					t.Fatalf("headers damaged: %+v", r.Headers)
				}
				i, err := strconv.Atoi(string(r.Headers[0].Value))
				if err != nil || seen[i] {
					t.Fatalf("record %q duplicated or unreadable", r.Headers[0].Value)
				}
				seen[i] = true
				if string(r.Key) != "key-"+strconv.Itoa(i) || string(r.Value) != fmt.Sprintf("value-%d-%s", i, name) {
					t.Fatalf("record %d: key %q value %q", i, r.Key, r.Value)
				}
				if r.Timestamp.UnixMilli() != base+int64(i) {
					t.Fatalf("record %d: timestamp %d, want %d", i, r.Timestamp.UnixMilli(), base+int64(i))
				}
				if prev, ok := lastI[r.Partition]; ok && i < prev {
					t.Fatalf("partition %d: record %d after %d (order broken)", r.Partition, i, prev)
				}
				lastI[r.Partition] = i
			}
			if len(next) != 16 {
				t.Errorf("records landed on %d partitions, want all 16", len(next))
			}
		})
	}
}

// TestLogAppendTime: with message.timestamp.type=LogAppendTime the broker
// stamps batches with its own clock and consumers see that time.
func TestLogAppendTime(t *testing.T) {
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t), Brokers: 1})
	cl := newClient(t, s, kgo.DefaultProduceTopic("stamped"))
	createTopic(t, cl, "stamped", 1, map[string]*string{"message.timestamp.type": kmsgString("LogAppendTime")})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	old := time.Now().Add(-48 * time.Hour)
	before := time.Now().Add(-time.Second)
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x"), Timestamp: old}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	recs := consumeAll(t, s, "stamped", 1)
	if ts := recs[0].Timestamp; ts.Before(before) || ts.After(time.Now().Add(time.Second)) {
		t.Fatalf("consumed timestamp %v, want the append time (not the producer's %v)", ts, old)
	}
	if recs[0].Attrs.TimestampType() != 1 {
		t.Fatalf("timestamp type %d, want 1 (LogAppendTime)", recs[0].Attrs.TimestampType())
	}
}

// TestTimestampWindow (KIP-937): a CreateTime topic refuses a record
// whose timestamp is outside message.timestamp.before.max.ms /
// after.max.ms with INVALID_TIMESTAMP, and by default one more than an
// hour ahead (Kafka 4's after.max.ms); a LogAppendTime topic stamps its own
// time whatever the window says.
func TestTimestampWindow(t *testing.T) {
	s := stack.Start(t, stack.Options{DatabaseURL: pgtest.URL(t), Brokers: 1})
	cl := newClient(t, s, kgo.RecordRetries(1))
	createTopic(t, cl, "windowed", 1, map[string]*string{
		"message.timestamp.before.max.ms": kmsgString("3600000"),
		"message.timestamp.after.max.ms":  kmsgString("60000"),
	})
	createTopic(t, cl, "unwindowed", 1, nil)
	createTopic(t, cl, "appended", 1, map[string]*string{
		"message.timestamp.type":          kmsgString("LogAppendTime"),
		"message.timestamp.before.max.ms": kmsgString("0"),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := time.Now()
	for _, tc := range []struct {
		name, topic string
		ts          time.Time
		want        error
	}{
		{"inside", "windowed", now, nil},
		{"too old", "windowed", now.Add(-2 * time.Hour), kerr.InvalidTimestamp},
		{"too new", "windowed", now.Add(5 * time.Minute), kerr.InvalidTimestamp},
		{"default: old is fine", "unwindowed", now.Add(-30 * 24 * time.Hour), nil},
		{"default: past an hour ahead", "unwindowed", now.Add(2 * time.Hour), kerr.InvalidTimestamp},
		{"log append time", "appended", now.Add(-2 * time.Hour), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := cl.ProduceSync(ctx, &kgo.Record{Topic: tc.topic, Value: []byte(tc.name), Timestamp: tc.ts}).FirstErr()
			if !errors.Is(err, tc.want) && err != tc.want {
				t.Fatalf("produce at %v: got %v, want %v", tc.ts, err, tc.want)
			}
		})
	}
	recs := consumeAll(t, s, "windowed", 1)
	if string(recs[0].Value) != "inside" {
		t.Fatalf("windowed holds %q, want only the record inside the window", recs[0].Value)
	}
}

func kmsgString(s string) *string { return &s }
