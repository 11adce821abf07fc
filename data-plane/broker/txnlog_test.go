package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/batchtest"
	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// produceRaw sends one batch of n records to partition 0 of topic and
// returns the partition's error code and base offset. txnID is the
// request's transactional id; producerID >= 0 makes the batch idempotent,
// and transactional if txnID is set.
func produceRaw(t *testing.T, cl *kgo.Client, topic string, txnID *string, producerID int64, epoch int16, seq int32, n int, value string) (int16, int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis, req.TransactionID = -1, 10_000, txnID
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batchtest.Build(batchtest.Spec{N: n, Value: []byte(value), Timestamp: time.Now().UnixMilli(),
		ProducerID: producerID, Epoch: epoch, Sequence: seq, Transactional: txnID != nil})
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	return p.ErrorCode, p.BaseOffset
}

func latest(t *testing.T, cl *kgo.Client, topic string, isolation int8) int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.IsolationLevel = isolation
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("ListOffsets: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	return p.Offset
}

// consumeValues reads topic from the start with a new consumer at the
// given isolation until it has seen want records (or a second more once
// it has, to catch extra ones).
func consumeValues(t *testing.T, r *rig, topic string, committed bool, want int) []string {
	t.Helper()
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	cl := r.client(t, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(iso),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	var got []string
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(rec *kgo.Record) { got = append(got, string(rec.Value)) })
		if len(got) > want || (len(got) == want && ctx.Err() != nil) {
			break
		}
	}
	return got
}

// The partition side of transactions through a real broker and real
// clients, without a coordinator: the store's test helpers stand in for
// AddPartitionsToTxn and EndTxn.
func TestTransactionalPartition(t *testing.T) {
	r := startRig(t, rigOptions{placement: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	v11 := kversion.Stable()
	v11.SetMaxKeyVersion(0, 11)
	cl := r.client(t, kgo.MaxVersions(v11))
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, -1, nil, "tx"); err != nil {
		t.Fatal(err)
	}
	var pid int64
	poll.Until(t, 30*time.Second, "the broker leads tx-0", func() error {
		tp := r.s.view.Load().topic("vc-dev", "tx")
		if pm := partitionOf(tp, 0); pm != nil && r.s.lead.Partition(pm.ID) != nil {
			pid = pm.ID
			return nil
		}
		return fmt.Errorf("not led here yet")
	})
	st := r.s.store
	txn := func(s string) *string { return &s }

	// Not in the producer's transaction, then in it.
	if err := st.OpenTxnForTest(ctx, "vc-dev", "t1", 7001, 0); err != nil {
		t.Fatal(err)
	}
	if code, _ := produceRaw(t, cl, "tx", txn("t1"), 7001, 0, 0, 3, "aborted"); code != kerr.InvalidTxnState.Code {
		t.Fatalf("produce outside the transaction: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(code))
	}
	if err := st.OpenTxnForTest(ctx, "vc-dev", "t1", 7001, 0, pid); err != nil {
		t.Fatal(err)
	}
	if code, base := produceRaw(t, cl, "tx", txn("t1"), 7001, 0, 0, 3, "aborted"); code != 0 || base != 0 {
		t.Fatalf("produce in the transaction: %v at %d", kerr.ErrorForCode(code), base)
	}
	if code, base := produceRaw(t, cl, "tx", nil, -1, -1, -1, 2, "plain"); code != 0 || base != 3 {
		t.Fatalf("plain produce: %v at %d", kerr.ErrorForCode(code), base)
	}

	// The open transaction holds the LSO.
	if lso, hw := latest(t, cl, "tx", 1), latest(t, cl, "tx", 0); lso != 0 || hw != 5 {
		t.Fatalf("ListOffsets latest: read_committed %d, read_uncommitted %d; want 0 and 5", lso, hw)
	}
	if got := consumeValues(t, r, "tx", true, 0); len(got) != 0 {
		t.Fatalf("read_committed consumer saw %v past the LSO", got)
	}
	if got := consumeValues(t, r, "tx", false, 5); len(got) != 5 {
		t.Fatalf("read_uncommitted consumer saw %v, want 5 records", got)
	}

	// The abort marker is written; read_committed skips the aborted records.
	if err := st.EndTxnForTest(ctx, "vc-dev", "t1", false, 0); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the LSO past the abort marker", func() error {
		if lso := latest(t, cl, "tx", 1); lso != 6 {
			return fmt.Errorf("LSO %d, want 6", lso)
		}
		return nil
	})
	if got := consumeValues(t, r, "tx", true, 2); fmt.Sprint(got) != "[plain plain]" {
		t.Fatalf("read_committed consumer saw %v, want the 2 plain records", got)
	}

	// The producer's next transaction (same epoch: version 1) commits.
	if err := st.OpenTxnForTest(ctx, "vc-dev", "t1", 7001, 0, pid); err != nil {
		t.Fatal(err)
	}
	if code, base := produceRaw(t, cl, "tx", txn("t1"), 7001, 0, 3, 2, "committed"); code != 0 || base != 6 {
		t.Fatalf("produce in the second transaction: %v at %d", kerr.ErrorForCode(code), base)
	}
	if err := st.EndTxnForTest(ctx, "vc-dev", "t1", true, 0); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the LSO past the commit marker", func() error {
		if lso := latest(t, cl, "tx", 1); lso != 9 {
			return fmt.Errorf("LSO %d, want 9", lso)
		}
		return nil
	})
	if got := consumeValues(t, r, "tx", true, 4); fmt.Sprint(got) != "[plain plain committed committed]" {
		t.Fatalf("read_committed consumer saw %v", got)
	}

	// Produce v12 (transaction version 2) adds the partition itself; an
	// ending transaction answers CONCURRENT_TRANSACTIONS.
	cl12 := r.client(t)
	if err := st.OpenTxnForTest(ctx, "vc-dev", "t2", 7002, 0); err != nil {
		t.Fatal(err)
	}
	if code, base := produceRaw(t, cl12, "tx", txn("t2"), 7002, 0, 0, 1, "v2"); code != 0 || base != 9 {
		t.Fatalf("v12 produce: %v at %d", kerr.ErrorForCode(code), base)
	}
	if err := st.EndTxnForTest(ctx, "vc-dev", "t2", true, 1); err != nil { // version 2 bumps the epoch
		t.Fatal(err)
	}
	// Until its marker is written the transaction is ending: a v12
	// produce at the new epoch is answered CONCURRENT_TRANSACTIONS
	// (retriable); once it is written, the produce opens the next
	// transaction. Nothing else may be answered.
	var nextBase int64
	poll.Until(t, 10*time.Second, "a v12 produce to open the next transaction", func() error {
		code, base := produceRaw(t, cl12, "tx", txn("t2"), 7002, 1, 0, 1, "v2")
		switch code {
		case 0:
			nextBase = base
			return nil
		case kerr.ConcurrentTransactions.Code:
			return fmt.Errorf("still %v", kerr.ErrorForCode(code))
		}
		t.Fatalf("v12 produce while the last transaction ends: %v, want CONCURRENT_TRANSACTIONS or success", kerr.ErrorForCode(code))
		return nil
	})

	// DescribeProducers shows both producers; the marker moved 7002 to
	// epoch 1, at which its next transaction is open.
	poll.Until(t, 10*time.Second, "DescribeProducers after the v2 marker", func() error {
		ds, err := kadm.NewClient(cl12).DescribeProducers(ctx, kadm.TopicsSet{"tx": {0: {}}})
		if err != nil {
			return err
		}
		got := map[int64]kadm.DescribedProducer{}
		ds.EachProducer(func(d kadm.DescribedProducer) { got[d.ProducerID] = d })
		if p := got[7001]; p.ProducerEpoch != 0 || p.LastSequence != 4 || p.CurrentTxnStartOffset != -1 {
			return fmt.Errorf("producer 7001: %+v", p)
		}
		if p := got[7002]; p.ProducerEpoch != 1 || p.CurrentTxnStartOffset != nextBase {
			return fmt.Errorf("producer 7002: %+v", p)
		}
		return nil
	})
}
