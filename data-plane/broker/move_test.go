package broker_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/batchtest"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/eddy-streams/eddy/internal/stack"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// objectFiles lists the objects in the stack's bucket with their sizes.
func objectFiles(t *testing.T, s *stack.Stack) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := filepath.WalkDir(filepath.Join(s.Dir(), "objects"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".obj") {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out[filepath.Base(path)] = info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// verifyAcks checks that every acknowledged record is read back exactly
// once, at the partition and offset its ack named.
func verifyAcks(t *testing.T, s *stack.Stack, topic string, got map[string]ackPos) {
	t.Helper()
	recs, ok := tryConsumeAll(t, s, topic, len(got))
	if !ok {
		t.Fatalf("consumed %d of %d acknowledged records", len(recs), len(got))
	}
	seen := map[string]bool{}
	for _, r := range recs {
		v := string(r.Value)
		if seen[v] {
			t.Fatalf("record %s read twice", v)
		}
		seen[v] = true
		if a, ok := got[v]; ok && (a.partition != r.Partition || a.offset != r.Offset) {
			t.Fatalf("record %s acknowledged at %d/%d but read at %d/%d", v, a.partition, a.offset, r.Partition, r.Offset)
		}
	}
	for v := range got {
		if !seen[v] {
			t.Fatalf("acknowledged record %s was lost", v)
		}
	}
}

// TestPartitionMove (issue 9, acceptance 2): the control plane moves a
// partition to another broker. Measured from the move request to the
// first produce the new leader acknowledges (acks=all, sent straight to
// it), it must finish well within a generous bound (the target is
// under 1 s; the measured time is logged); the old leader writes no
// object and the new one only the produced record — no data is copied —
// and the new leader continues the log at the committed high watermark.
// produceRequest is an acks=all produce of batch to partition 0 of topic.
func produceRequest(topic string, batch []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func TestPartitionMove(t *testing.T) {
	url := pgtest.URL(t)
	s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 2})
	cl := newClient(t, s, kgo.DefaultProduceTopic("moving"), kgo.MetadataMinAge(100*time.Millisecond))
	createTopic(t, cl, "moving", 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n = 200
	for i := range n {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("r" + strconv.Itoa(i) + strings.Repeat(".", 1000))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := store.Open(ctx, url, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()

	var times []time.Duration
	for round := range 3 {
		p, err := cp.PartitionByName(ctx, "vc-dev", "moving", 0)
		if err != nil {
			t.Fatal(err)
		}
		from := p.LeaderID
		to := int32(3) - from // brokers 1 and 2
		before := objectFiles(t, s)
		batch := batchtest.Build(batchtest.Spec{N: 1, Value: []byte("after-move-" + strconv.Itoa(round)), ProducerID: -1})

		start := time.Now()
		if k, err := cp.RequestMoves(ctx, []store.Move{{PartitionID: p.ID, To: to}}); err != nil || k != 1 {
			t.Fatalf("request move: %d %v", k, err)
		}
		// Produce straight to the target until it acknowledges.
		var offset int64
		for {
			resp, err := produceRequest("moving", batch).RequestWith(ctx, cl.Broker(int(to)))
			if err != nil {
				t.Fatal(err)
			}
			pr := resp.Topics[0].Partitions[0]
			if pr.ErrorCode == 0 {
				offset = pr.BaseOffset
				break
			}
			if e := kerr.ErrorForCode(pr.ErrorCode); !kerr.IsRetriable(e) {
				t.Fatalf("produce to the new leader: %v", e)
			}
			if ctx.Err() != nil {
				t.Fatal("the new leader never acknowledged")
			}
			time.Sleep(time.Millisecond)
		}
		took := time.Since(start)
		times = append(times, took)
		// The old leader redirects (KIP-951): NOT_LEADER_OR_FOLLOWER
		// naming the new leader at the next epoch, with its endpoint.
		req := produceRequest("moving", batch)
		req.Version = 10
		resp, err := req.RequestWith(ctx, cl.Broker(int(from)))
		if err != nil {
			t.Fatal(err)
		}
		pr := resp.Topics[0].Partitions[0]
		if pr.ErrorCode != kerr.NotLeaderForPartition.Code || pr.CurrentLeader.LeaderID != to || pr.CurrentLeader.LeaderEpoch != p.LeaderEpoch+1 {
			t.Fatalf("produce to the old leader: %v, current leader %+v; want NOT_LEADER_OR_FOLLOWER naming broker %d at epoch %d",
				kerr.ErrorForCode(pr.ErrorCode), pr.CurrentLeader, to, p.LeaderEpoch+1)
		}
		if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != to || resp.Brokers[0].Port == 0 {
			t.Fatalf("produce to the old leader named brokers %+v, want broker %d's endpoint", resp.Brokers, to)
		}
		// So does a fetch (v16: the leader and its endpoint).
		freq := kmsg.NewPtrFetchRequest()
		freq.Version, freq.MaxBytes, freq.SessionEpoch = 16, 1<<20, -1
		ft := kmsg.NewFetchRequestTopic()
		td, err := kadm.NewClient(cl).ListTopics(ctx, "moving")
		if err != nil {
			t.Fatal(err)
		}
		ft.TopicID = td["moving"].ID
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.PartitionMaxBytes, fp.CurrentLeaderEpoch, fp.LogStartOffset = 1<<20, -1, -1
		ft.Partitions = append(ft.Partitions, fp)
		freq.Topics = append(freq.Topics, ft)
		fresp, err := freq.RequestWith(ctx, cl.Broker(int(from)))
		if err != nil {
			t.Fatal(err)
		}
		fpr := fresp.Topics[0].Partitions[0]
		if fpr.ErrorCode != kerr.NotLeaderForPartition.Code || fpr.CurrentLeader.LeaderID != to || fpr.CurrentLeader.LeaderEpoch != p.LeaderEpoch+1 ||
			len(fresp.Brokers) != 1 || fresp.Brokers[0].NodeID != to {
			t.Fatalf("fetch from the old leader: %v, current leader %+v, brokers %+v; want NOT_LEADER_OR_FOLLOWER naming broker %d at epoch %d",
				kerr.ErrorForCode(fpr.ErrorCode), fpr.CurrentLeader, fresp.Brokers, to, p.LeaderEpoch+1)
		}
		if want := int64(n + round); offset != want {
			t.Fatalf("the new leader wrote at offset %d, want %d (the committed high watermark)", offset, want)
		}
		after := objectFiles(t, s)
		var written int64
		for name, size := range after {
			if _, ok := before[name]; ok {
				continue
			}
			if strings.HasPrefix(name, "b"+strconv.Itoa(int(from))+"-") {
				t.Fatalf("the old leader wrote object %s (%d bytes) during the move", name, size)
			}
			written += size
		}
		// The one produced record, its batch header and the object's
		// index; 200 KB of copied data would show.
		if written > 4096 {
			t.Fatalf("%d bytes written to object storage during the move", written)
		}
		t.Logf("move %d: partition %d broker %d -> %d: first acknowledged produce on the new leader after %v; object bytes written by the move: 0 by the old leader, %d by the new one (its first record)",
			round, p.ID, from, to, took.Round(time.Millisecond), written)
		if took > 10*time.Second {
			t.Fatalf("move took %v", took)
		}
	}
	slices.Sort(times)
	t.Logf("partition move time over %d moves: min %v, median %v, max %v", len(times), times[0].Round(time.Millisecond),
		times[len(times)/2].Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond))
}

// TestPartitionMoveUnderLoad: partitions move back and forth while
// producers keep writing; every acknowledged record is read back once, at
// its acknowledged offset, and producers see only retriable errors.
func TestPartitionMoveUnderLoad(t *testing.T) {
	url := pgtest.URL(t)
	s := stack.Start(t, stack.Options{DatabaseURL: url, Brokers: 3})
	const topic = "busy"
	prod := newClient(t, s, kgo.DefaultProduceTopic(topic), kgo.RecordRetries(1<<30),
		kgo.RecordDeliveryTimeout(60*time.Second), kgo.MetadataMinAge(100*time.Millisecond))
	createTopic(t, prod, topic, 6, nil)
	cp, err := store.Open(context.Background(), url, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()

	acks := &ackLog{acks: map[string]ackPos{}}
	var failed atomic.Int64
	var lastErr atomic.Value
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var seq atomic.Int64
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := seq.Add(1)
				prod.Produce(context.Background(), &kgo.Record{Key: []byte(strconv.FormatInt(i%31, 10)), Value: []byte("v" + strconv.FormatInt(i, 10))},
					func(r *kgo.Record, err error) {
						if err != nil {
							failed.Add(1)
							lastErr.Store(err)
							return
						}
						acks.add(r)
					})
				if i%100 == 0 {
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
	}
	// Moves start once the load is on: every partition led and
	// acknowledging records.
	poll.Until(t, 2*time.Minute, "every partition to be led and acknowledging", func() error {
		if _, err := leaders(kadm.NewClient(prod), topic, 6); err != nil {
			return err
		}
		if n := len(acks.partitions()); n < 6 {
			return fmt.Errorf("acknowledged records on %d of 6 partitions", n)
		}
		return nil
	})
	mctx, mcancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer mcancel()
	moves := 0
	for round := range 4 {
		var ms []store.Move
		for part := range int32(6) {
			p, err := cp.PartitionByName(mctx, "vc-dev", topic, part)
			if err != nil {
				t.Fatal(err)
			}
			if p.LeaderID > 0 {
				ms = append(ms, store.Move{PartitionID: p.ID, To: p.LeaderID%3 + 1})
			}
		}
		k, err := cp.RequestMoves(mctx, ms)
		if err != nil {
			t.Fatal(err)
		}
		moves += k
		// Wait until every move completed before the next round.
		poll.Until(t, 2*time.Minute, fmt.Sprintf("round %d's moves to complete", round), func() error {
			for part := range int32(6) {
				p, err := cp.PartitionByName(mctx, "vc-dev", topic, part)
				if err != nil {
					return err
				}
				if p.MovingTo >= 0 || p.LeaderID < 0 {
					return fmt.Errorf("partition %d: leader %d, moving to %d", part, p.LeaderID, p.MovingTo)
				}
			}
			return nil
		})
		time.Sleep(500 * time.Millisecond)
	}
	stop()
	wg.Wait()
	fctx, fcancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer fcancel()
	if err := prod.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d records failed for good (last: %v)", n, lastErr.Load())
	}
	got := acks.snapshot()
	verifyAcks(t, s, topic, got)
	t.Logf("%d moves under load; %d acknowledged records verified", moves, len(got))
}
