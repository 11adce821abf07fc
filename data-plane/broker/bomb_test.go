package broker

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/internal/batch"
	"github.com/eddy-streams/eddy/internal/batchtest"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/eddy-streams/eddy/tiered/fsbucket"
)

// Decompression bombs against a broker in this process, so that its
// memory can be measured: a batch of at most 1 MiB whose records
// decompress to a gigabyte (zstd, gzip) or 240 MiB (lz4 compresses at
// most about 1:250).

// bombMemoryBound is what one bomb may cost a broker, in bytes allocated.
const bombMemoryBound = 64 << 20

var bombCodecs = []batch.Codec{batch.CodecGzip, batch.CodecLz4, batch.CodecZstd}

func bombFor(t *testing.T, c batch.Codec, ts int64) []byte {
	t.Helper()
	size := int64(1 << 30)
	if c == batch.CodecLz4 {
		size = 240 << 20
	}
	b := batchtest.Bomb(int8(c), size, ts)
	if len(b) > 1<<20 {
		t.Fatalf("%v bomb is %d bytes, want at most 1 MiB", c, len(b))
	}
	return b
}

// inProcess is one broker serving from this process, leading every
// partition of its topics.
type inProcess struct {
	s     *Server
	st    *store.Store
	cl    *kgo.Client
	parts map[string][]int64 // topic → partition ids by number
}

func startInProcess(t *testing.T, topics map[string]int32) *inProcess {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, pgtest.URL(t), 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	bkt, err := fsbucket.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Listen, cfg.AnonymousCluster = "127.0.0.1:0", "vc-bomb"
	cfg.Leader.WALDir, cfg.Metering.Dir = t.TempDir(), t.TempDir()
	s, err := New(cfg, st, bkt, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })

	p := &inProcess{s: s, st: st, parts: map[string][]int64{}}
	waitFor(t, "the broker to register", func() bool {
		md, err := st.Snapshot(ctx)
		return err == nil && len(md.Brokers) == 1 && s.Addr() != nil
	})
	if err := st.EnsureCluster(ctx, "vc-bomb", "bomb"); err != nil {
		t.Fatal(err)
	}
	for name, n := range topics {
		if _, _, err := st.CreateTopic(ctx, store.AnyOrg, "vc-bomb", name, n, nil); err != nil {
			t.Fatal(err)
		}
	}
	// The control plane is not here: place every partition on this broker.
	if _, _, err := st.PlaceRound(ctx, func(_ []store.BrokerLoad, items []store.Item) []store.Assignment {
		out := make([]store.Assignment, len(items))
		for i, it := range items {
			out[i] = store.Assignment{Item: it, Broker: cfg.ID}
		}
		return out
	}); err != nil {
		t.Fatal(err)
	}
	md, err := st.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range md.Topics {
		for _, pm := range tp.Partitions {
			p.parts[tp.Name] = append(p.parts[tp.Name], pm.ID)
			waitFor(t, "leadership", func() bool { return s.lead.Partition(pm.ID) != nil })
		}
	}
	if p.cl, err = kgo.NewClient(kgo.SeedBrokers(s.Addr().String())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.cl.Close)
	return p
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *inProcess) request(t *testing.T, req kmsg.Request) kmsg.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := p.cl.Broker(1).Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestProduceBombRejected: a bomb is refused with MESSAGE_TOO_LARGE on its
// partition only, nothing is appended, and the broker allocates less than
// bombMemoryBound for it. The request is built by hand: kgo would not
// build such a batch.
func TestProduceBombRejected(t *testing.T) {
	p := startInProcess(t, map[string]int32{"bombs": 2})
	for _, c := range bombCodecs {
		t.Run(c.String(), func(t *testing.T) {
			bomb := bombFor(t, c, time.Now().UnixMilli())
			req := kmsg.NewPtrProduceRequest()
			req.Acks, req.TimeoutMillis = -1, 10000
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = "bombs"
			for i, records := range [][]byte{bomb, batchtest.Build(batchtest.Spec{N: 1, Value: []byte("fine"), ProducerID: -1})} {
				rp := kmsg.NewProduceRequestTopicPartition()
				rp.Partition, rp.Records = int32(i), records
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
			var resp *kmsg.ProduceResponse
			grew := batchtest.AllocatedBy(func() { resp = p.request(t, req).(*kmsg.ProduceResponse) })
			t.Logf("%v bomb of %d bytes: the produce allocated %d KiB", c, len(bomb), grew>>10)
			got := resp.Topics[0].Partitions
			if got[0].ErrorCode != kerr.MessageTooLarge.Code {
				t.Errorf("bomb: %v, want MESSAGE_TOO_LARGE", kerr.ErrorForCode(got[0].ErrorCode))
			}
			if got[1].ErrorCode != 0 {
				t.Errorf("the other partition: %v, want success", kerr.ErrorForCode(got[1].ErrorCode))
			}
			if _, hw := p.s.lead.Partition(p.parts["bombs"][0]).Offsets(); hw != 0 {
				t.Errorf("the bomb's partition has high watermark %d, want nothing appended", hw)
			}
			if grew > bombMemoryBound {
				t.Errorf("the produce allocated %d MiB, want under %d", grew>>20, bombMemoryBound>>20)
			}
		})
	}
}

// TestListOffsetsStoredBomb: a bomb stored before produce checked sizes
// (appended to the leader directly) costs ListOffsets neither for the max
// timestamp (-3, answered from headers) nor by timestamp (walked under the
// limit, then answered at the batch's base offset).
func TestListOffsetsStoredBomb(t *testing.T) {
	topics := map[string]int32{}
	for _, c := range bombCodecs {
		topics["stored-"+c.String()] = 1
	}
	p := startInProcess(t, topics)
	ctx := context.Background()
	for _, c := range bombCodecs {
		t.Run(c.String(), func(t *testing.T) {
			topic := "stored-" + c.String()
			part := p.s.lead.Partition(p.parts[topic][0])
			// Offsets 0-1 at 1000, the bomb at 2 (max timestamp 3000), 3 at 2000.
			for _, raw := range [][]byte{
				batchtest.Build(batchtest.Spec{N: 2, Value: []byte("before"), Timestamp: 1000, ProducerID: -1}),
				bombFor(t, c, 3000),
				batchtest.Build(batchtest.Spec{N: 1, Value: []byte("after"), Timestamp: 2000, ProducerID: -1}),
			} {
				hdrs, err := batch.Validate(raw, 0)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := part.Append(raw, hdrs, false); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.s.lead.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if err := part.WaitCommitted(ctx, 3); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				name          string
				ts            int64
				offset, recTS int64
			}{
				{"max timestamp", -3, 2, 3000},
				{"by timestamp, on the bomb", 2500, 2, -1},
				{"by timestamp, before it", 500, 0, 1000},
			} {
				req := kmsg.NewPtrListOffsetsRequest()
				req.SetVersion(8)
				rt := kmsg.NewListOffsetsRequestTopic()
				rt.Topic = topic
				rp := kmsg.NewListOffsetsRequestTopicPartition()
				rp.Timestamp, rp.CurrentLeaderEpoch = tc.ts, -1
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				var resp *kmsg.ListOffsetsResponse
				grew := batchtest.AllocatedBy(func() { resp = p.request(t, req).(*kmsg.ListOffsetsResponse) })
				got := resp.Topics[0].Partitions[0]
				t.Logf("%s: offset %d timestamp %d, allocated %d KiB", tc.name, got.Offset, got.Timestamp, grew>>10)
				if got.ErrorCode != 0 || got.Offset != tc.offset || got.Timestamp != tc.recTS {
					t.Errorf("%s: %v offset %d timestamp %d, want offset %d timestamp %d", tc.name,
						kerr.ErrorForCode(got.ErrorCode), got.Offset, got.Timestamp, tc.offset, tc.recTS)
				}
				if grew > bombMemoryBound {
					t.Errorf("%s: allocated %d MiB, want under %d", tc.name, grew>>20, bombMemoryBound>>20)
				}
			}
		})
	}
}
