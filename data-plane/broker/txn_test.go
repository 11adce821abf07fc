package broker

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// txnRig is one broker leading every coordinator slot, with a topic of
// two partitions, and raw-request helpers for the transaction APIs. The
// partition leaders' half (writing partition markers) is not there: tests
// delete partition markers with store.DeletePartitionMarkers to stand in
// for it.
type txnRig struct {
	t   *testing.T
	r   *rig
	cl  *kgo.Client
	ctx context.Context
	at  map[[2]int16]*kgo.Client // clients capped at an API's version
}

const txnTopicName = "txn-in"

func startTxnRig(t *testing.T) *txnRig {
	// Only the coordinator slots are placed: no broker leads the topic's
	// partitions, so their markers stay queued until the test writes them
	// (writePartitionMarkers), and the states in between can be seen.
	slotsOnly := func(brokers []store.BrokerLoad, unplaced []store.Item) []store.Assignment {
		return onTheBroker(brokers, slices.DeleteFunc(unplaced, func(it store.Item) bool { return it.Kind != store.KindSlot }))
	}
	r := startRig(t, rigOptions{placement: true, place: slotsOnly, config: func(c *Config) {
		c.TransactionCheckInterval = 100 * time.Millisecond
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cl := r.client(t, kgo.RequestRetries(0))
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, -1, nil, txnTopicName); err != nil {
		t.Fatal(err)
	}
	x := &txnRig{t: t, r: r, cl: cl, ctx: ctx, at: map[[2]int16]*kgo.Client{}}
	until(t, 30*time.Second, "the broker coordinates transactional ids", func() (bool, any) {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorType, req.CoordinatorKey = 1, "probe"
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return false, err
		}
		return resp.ErrorCode == 0, kerr.ErrorForCode(resp.ErrorCode)
	})
	return x
}

// do sends req at its Version: kgo sends the highest version both sides
// know, so the request goes through a client capped at that version.
func (x *txnRig) do(req kmsg.Request) kmsg.Response {
	x.t.Helper()
	k := [2]int16{req.Key(), req.GetVersion()}
	cl := x.at[k]
	if cl == nil {
		vs := kversion.Stable()
		vs.SetMaxKeyVersion(k[0], k[1])
		cl = x.r.client(x.t, kgo.MaxVersions(vs), kgo.RequestRetries(0))
		x.at[k] = cl
	}
	resp, err := cl.Request(x.ctx, req)
	if err != nil {
		x.t.Fatalf("%s v%d: %v", kmsg.NameForKey(k[0]), k[1], err)
	}
	if resp.GetVersion() != k[1] {
		x.t.Fatalf("%s sent at v%d, want v%d", kmsg.NameForKey(k[0]), resp.GetVersion(), k[1])
	}
	return resp
}

func (x *txnRig) key(txid string) store.TxnKey {
	return store.TxnKey{ClusterID: "vc-dev", TransactionalID: txid}
}

func (x *txnRig) init(txid string, timeout time.Duration, pid int64, epoch int16) (int64, int16, int16) {
	x.t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = 5
	req.TransactionalID, req.TransactionTimeoutMillis = &txid, int32(timeout/time.Millisecond)
	req.ProducerID, req.ProducerEpoch = pid, epoch
	resp := x.do(req).(*kmsg.InitProducerIDResponse)
	return resp.ProducerID, resp.ProducerEpoch, resp.ErrorCode
}

func (x *txnRig) addPartitions(version int16, txid string, pid int64, epoch int16, parts ...int32) int16 {
	x.t.Helper()
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = version
	req.TransactionalID, req.ProducerID, req.ProducerEpoch = txid, pid, epoch
	rt := kmsg.NewAddPartitionsToTxnRequestTopic()
	rt.Topic, rt.Partitions = txnTopicName, parts
	req.Topics = append(req.Topics, rt)
	resp := x.do(req).(*kmsg.AddPartitionsToTxnResponse)
	code := int16(0)
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				code = p.ErrorCode
			}
		}
	}
	return code
}

func (x *txnRig) addOffsets(txid string, pid int64, epoch int16, group string) int16 {
	x.t.Helper()
	req := kmsg.NewPtrAddOffsetsToTxnRequest()
	req.Version = 3
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = txid, pid, epoch, group
	resp := x.do(req).(*kmsg.AddOffsetsToTxnResponse)
	return resp.ErrorCode
}

func (x *txnRig) commitOffset(version int16, txid string, pid int64, epoch int16, group string, partition int32, offset int64) int16 {
	x.t.Helper()
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.Version = version
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = txid, pid, epoch, group
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = txnTopicName
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = partition, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := x.do(req).(*kmsg.TxnOffsetCommitResponse)
	return resp.Topics[0].Partitions[0].ErrorCode
}

func (x *txnRig) end(version int16, txid string, pid int64, epoch int16, commit bool) (int64, int16, int16) {
	x.t.Helper()
	req := kmsg.NewPtrEndTxnRequest()
	req.Version = version
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = txid, pid, epoch, commit
	resp := x.do(req).(*kmsg.EndTxnResponse)
	return resp.ProducerID, resp.ProducerEpoch, resp.ErrorCode
}

// fetchOffset returns a group's committed offset of partition and the
// partition's error, with or without require_stable.
func (x *txnRig) fetchOffset(group string, partition int32, stable bool) (int64, int16) {
	x.t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 7
	req.Group, req.RequireStable = group, stable
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = txnTopicName, []int32{partition}
	req.Topics = append(req.Topics, rt)
	resp := x.do(req).(*kmsg.OffsetFetchResponse)
	if resp.ErrorCode != 0 {
		return -1, resp.ErrorCode
	}
	p := resp.Topics[0].Partitions[0]
	return p.Offset, p.ErrorCode
}

// writePartitionMarkers stands in for the partition leaders.
func (x *txnRig) writePartitionMarkers(txid string) {
	x.t.Helper()
	if _, err := x.r.s.store.DeletePartitionMarkers(x.ctx, x.key(txid)); err != nil {
		x.t.Fatal(err)
	}
}

func (x *txnRig) describe(txid string) kmsg.DescribeTransactionsResponseTransactionState {
	x.t.Helper()
	req := kmsg.NewPtrDescribeTransactionsRequest()
	req.Version = 0
	req.TransactionalIDs = []string{txid}
	resp := x.do(req).(*kmsg.DescribeTransactionsResponse)
	return resp.TransactionStates[0]
}

// until polls cond, which reports whether it holds and what it saw.
func until(t *testing.T, within time.Duration, what string, cond func() (bool, any)) {
	t.Helper()
	poll.Until(t, within, what, func() error {
		if ok, seen := cond(); !ok {
			return fmt.Errorf("%+v", seen)
		}
		return nil
	})
}

func wantCode(t *testing.T, what string, got, want int16) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %v, want %v", what, kerr.ErrorForCode(got), kerr.ErrorForCode(want))
	}
}

// TestTxnCommitMovesOffsets: a transaction's offsets stay pending
// (require_stable sees UNSTABLE_OFFSET_COMMIT) until EndTxn commits it
// and the group marker moves them into the group's offsets; a new
// transaction waits (CONCURRENT_TRANSACTIONS) until the partition markers
// are written; an aborted transaction's offsets are dropped.
func TestTxnCommitMovesOffsets(t *testing.T) {
	x := startTxnRig(t)
	pid, epoch, code := x.init("copy", time.Minute, -1, -1)
	wantCode(t, "InitProducerId", code, 0)
	if epoch != 0 {
		t.Fatalf("new transactional id at epoch %d, want 0", epoch)
	}
	wantCode(t, "AddPartitionsToTxn", x.addPartitions(3, "copy", pid, epoch, 0, 1), 0)
	wantCode(t, "AddOffsetsToTxn", x.addOffsets("copy", pid, epoch, "g"), 0)
	wantCode(t, "TxnOffsetCommit", x.commitOffset(3, "copy", pid, epoch, "g", 0, 42), 0)
	if st := x.describe("copy"); st.State != "Ongoing" || len(st.Topics) != 1 || len(st.Topics[0].Partitions) != 2 {
		t.Fatalf("DescribeTransactions of an ongoing transaction: %+v", st)
	}
	if off, code := x.fetchOffset("g", 0, false); off != -1 || code != 0 {
		t.Fatalf("before the commit, OffsetFetch shows %d (%v), want nothing", off, kerr.ErrorForCode(code))
	}
	_, code = x.fetchOffset("g", 0, true)
	wantCode(t, "require_stable OffsetFetch before the commit", code, kerr.UnstableOffsetCommit.Code)

	_, _, code = x.end(3, "copy", pid, epoch, true)
	wantCode(t, "EndTxn commit", code, 0)
	until(t, 10*time.Second, "the group marker commits the offset", func() (bool, any) {
		off, code := x.fetchOffset("g", 0, true)
		return off == 42 && code == 0, []any{off, kerr.ErrorForCode(code)}
	})
	// The partition markers are outstanding: the next transaction waits.
	wantCode(t, "AddPartitionsToTxn while markers are outstanding", x.addPartitions(3, "copy", pid, epoch, 0), kerr.ConcurrentTransactions.Code)
	_, _, code = x.end(3, "copy", pid, epoch, true)
	wantCode(t, "EndTxn commit retried while markers are outstanding", code, kerr.ConcurrentTransactions.Code)
	x.writePartitionMarkers("copy")
	_, _, code = x.end(3, "copy", pid, epoch, true)
	wantCode(t, "EndTxn commit retried once complete", code, 0)
	_, _, code = x.end(3, "copy", pid, epoch, false)
	wantCode(t, "EndTxn abort after a commit", code, kerr.InvalidTxnState.Code)
	if st := x.describe("copy"); st.State != "CompleteCommit" {
		t.Fatalf("after the markers, state %s, want CompleteCommit", st.State)
	}

	// Aborted: the offset is dropped, the committed one stays.
	wantCode(t, "AddPartitionsToTxn", x.addPartitions(3, "copy", pid, epoch, 1), 0)
	wantCode(t, "AddOffsetsToTxn", x.addOffsets("copy", pid, epoch, "g"), 0)
	wantCode(t, "TxnOffsetCommit", x.commitOffset(3, "copy", pid, epoch, "g", 0, 99), 0)
	_, _, code = x.end(3, "copy", pid, epoch, false)
	wantCode(t, "EndTxn abort", code, 0)
	until(t, 10*time.Second, "the group marker drops the aborted offset", func() (bool, any) {
		pending, err := x.r.s.store.PendingTxnOffsets(x.ctx, "vc-dev", "g")
		return err == nil && len(pending) == 0, pending
	})
	if off, code := x.fetchOffset("g", 0, true); off != 42 || code != 0 {
		t.Fatalf("after the abort OffsetFetch shows %d (%v), want 42", off, kerr.ErrorForCode(code))
	}

	// TxnOffsetCommit before v5 needs AddOffsetsToTxn; v5 adds the group.
	x.writePartitionMarkers("copy")
	wantCode(t, "TxnOffsetCommit v4 without AddOffsetsToTxn", x.commitOffset(4, "copy", pid, epoch, "g", 0, 7), kerr.InvalidTxnState.Code)
	wantCode(t, "TxnOffsetCommit v5 without AddOffsetsToTxn", x.commitOffset(5, "copy", pid, epoch, "g", 0, 7), 0)
	if st := x.describe("copy"); st.State != "Ongoing" {
		t.Fatalf("TxnOffsetCommit v5 left the transaction %s, want Ongoing", st.State)
	}
}

// TestTxnFencing: a second InitProducerId aborts the first instance's
// transaction and fences it; KIP-360 recovery and retries are honoured.
func TestTxnFencing(t *testing.T) {
	x := startTxnRig(t)
	pid, e1, code := x.init("app", time.Minute, -1, -1)
	wantCode(t, "InitProducerId", code, 0)
	wantCode(t, "AddPartitionsToTxn", x.addPartitions(3, "app", pid, e1, 0), 0)

	// A second instance: the ongoing transaction is aborted first.
	_, _, code = x.init("app", time.Minute, -1, -1)
	wantCode(t, "second InitProducerId while the abort's markers are written", code, kerr.ConcurrentTransactions.Code)
	x.writePartitionMarkers("app")
	pid2, e2, code := x.init("app", time.Minute, -1, -1)
	wantCode(t, "second InitProducerId", code, 0)
	if pid2 != pid || e2 <= e1 {
		t.Fatalf("second instance got %d/%d, want %d at an epoch above %d", pid2, e2, pid, e1)
	}
	// The first instance is fenced, in each version's words.
	_, _, code = x.end(3, "app", pid, e1, true)
	wantCode(t, "EndTxn v3 of the fenced instance", code, kerr.ProducerFenced.Code)
	_, _, code = x.end(1, "app", pid, e1, true)
	wantCode(t, "EndTxn v1 of the fenced instance", code, kerr.InvalidProducerEpoch.Code)
	wantCode(t, "AddPartitionsToTxn of the fenced instance", x.addPartitions(3, "app", pid, e1, 0), kerr.ProducerFenced.Code)
	_, _, code = x.init("app", time.Minute, pid, e1)
	wantCode(t, "KIP-360 InitProducerId of the fenced instance", code, kerr.ProducerFenced.Code)
	wantCode(t, "AddPartitionsToTxn with another producer id", x.addPartitions(3, "app", pid+1000, e2, 0), kerr.InvalidProducerIDMapping.Code)

	// KIP-360: the current instance recovers at its epoch, and a retry of
	// that recovery gets the same answer.
	_, e3, code := x.init("app", time.Minute, pid, e2)
	wantCode(t, "KIP-360 InitProducerId", code, 0)
	if e3 != e2+1 {
		t.Fatalf("KIP-360 bump gave epoch %d, want %d", e3, e2+1)
	}
	_, e4, code := x.init("app", time.Minute, pid, e2)
	wantCode(t, "KIP-360 InitProducerId retried", code, 0)
	if e4 != e3 {
		t.Fatalf("retried KIP-360 bump gave epoch %d, want %d again", e4, e3)
	}

	// Transaction version 2: every end bumps the epoch; a retry answers
	// the same; an empty abort is allowed.
	wantCode(t, "AddPartitionsToTxn", x.addPartitions(3, "app", pid, e3, 1), 0)
	p5, e5, code := x.end(5, "app", pid, e3, true)
	wantCode(t, "EndTxn v5", code, 0)
	if p5 != pid || e5 != e3+1 {
		t.Fatalf("EndTxn v5 answered %d/%d, want %d/%d", p5, e5, pid, e3+1)
	}
	_, _, code = x.end(5, "app", pid, e3, true)
	wantCode(t, "EndTxn v5 retried while markers are outstanding", code, kerr.ConcurrentTransactions.Code)
	x.writePartitionMarkers("app")
	if p, e, code := x.end(5, "app", pid, e3, true); code != 0 || p != pid || e != e5 {
		t.Fatalf("EndTxn v5 retried: %d/%d %v, want %d/%d", p, e, kerr.ErrorForCode(code), pid, e5)
	}
	_, _, code = x.end(5, "app", pid, e3, false)
	wantCode(t, "EndTxn v5 abort retrying a commit", code, kerr.InvalidTxnState.Code)
	if _, e, code := x.end(5, "app", pid, e5, false); code != 0 || e != e5+1 {
		t.Fatalf("EndTxn v5 abort of an empty transaction: epoch %d %v, want %d", e, kerr.ErrorForCode(code), e5+1)
	}

	_, _, code = x.init("app", 20*time.Minute, -1, -1)
	wantCode(t, "InitProducerId above --transaction-max-timeout", code, kerr.InvalidTransactionTimeout.Code)
}

// TestTxnTimeout: the coordinator aborts a transaction past its timeout
// and fences its producer, which recovers with KIP-360.
func TestTxnTimeout(t *testing.T) {
	x := startTxnRig(t)
	pid, epoch, code := x.init("slow", 300*time.Millisecond, -1, -1)
	wantCode(t, "InitProducerId", code, 0)
	wantCode(t, "AddPartitionsToTxn", x.addPartitions(3, "slow", pid, epoch, 0), 0)
	wantCode(t, "TxnOffsetCommit v5", x.commitOffset(5, "slow", pid, epoch, "g", 1, 5), 0)
	until(t, 10*time.Second, "the transaction is aborted on timeout", func() (bool, any) {
		st := x.describe("slow")
		return st.State == "PrepareAbort" && st.ProducerEpoch == epoch+1, st
	})
	_, _, code = x.end(3, "slow", pid, epoch, true)
	wantCode(t, "EndTxn after the timeout", code, kerr.ProducerFenced.Code)
	until(t, 10*time.Second, "the aborted offsets are dropped", func() (bool, any) {
		pending, err := x.r.s.store.PendingTxnOffsets(x.ctx, "vc-dev", "g")
		return err == nil && len(pending) == 0, pending
	})
	x.writePartitionMarkers("slow")
	if _, e, code := x.init("slow", time.Minute, pid, epoch); code != 0 || e != epoch+1 {
		t.Fatalf("KIP-360 recovery after the timeout: epoch %d %v, want %d", e, kerr.ErrorForCode(code), epoch+1)
	}
}

// TestTxnSurvivesSlotMove: the coordinator slot moves (a new leader
// epoch, as after a crash) mid-transaction; requests at the old epoch are
// refused and the new leadership completes the transaction from Postgres.
func TestTxnSurvivesSlotMove(t *testing.T) {
	x := startTxnRig(t)
	pid, epoch, code := x.init("moving", time.Minute, -1, -1)
	wantCode(t, "InitProducerId", code, 0)
	wantCode(t, "AddPartitionsToTxn", x.addPartitions(3, "moving", pid, epoch, 0, 1), 0)

	v := x.r.s.view.Load()
	sl := v.slots[slotFor("vc-dev", "moving", len(v.slots))]
	old, _ := x.r.s.slotFence("vc-dev", "moving")
	if err := x.r.s.store.AssignSlots(x.ctx, x.r.s.cfg.ID, sl.LeaderEpoch+5, sl.Slot); err != nil {
		t.Fatal(err)
	}
	// A transition under the old epoch is fenced.
	if _, _, err := x.r.s.store.EndTxn(x.ctx, store.EndTxnRequest{TxnChange: store.TxnChange{
		TxnKey: x.key("moving"), Fence: old, ProducerID: pid, ProducerEpoch: epoch}, Commit: true}); err == nil {
		t.Fatal("EndTxn under the old slot epoch succeeded")
	}
	until(t, 10*time.Second, "the broker leads the slot at the new epoch", func() (bool, any) {
		f, ok := x.r.s.slotFence("vc-dev", "moving")
		return ok && f.LeaderEpoch == sl.LeaderEpoch+5, f
	})
	_, _, code = x.end(3, "moving", pid, epoch, true)
	wantCode(t, "EndTxn after the move", code, 0)
	if st := x.describe("moving"); st.State != "PrepareCommit" {
		t.Fatalf("after EndTxn, state %s, want PrepareCommit", st.State)
	}
}

// TestTxnClustersIndependent: the same transactional id in two virtual
// clusters names two transactions.
func TestTxnClustersIndependent(t *testing.T) {
	x := startTxnRig(t)
	st := x.r.s.store
	if err := st.EnsureCluster(x.ctx, "vc-other", "other"); err != nil {
		t.Fatal(err)
	}
	v := x.r.s.view.Load()
	pid, _, code := x.init("shared", time.Minute, -1, -1)
	wantCode(t, "InitProducerId in vc-dev", code, 0)
	other := store.TxnKey{ClusterID: "vc-other", TransactionalID: "shared"}
	sl := v.slots[slotFor(other.ClusterID, other.TransactionalID, len(v.slots))]
	fence := store.SlotFence{Slot: sl.Slot, BrokerID: sl.LeaderID, LeaderEpoch: sl.LeaderEpoch}
	t2, _, err := st.InitTxnProducer(x.ctx, store.InitTxn{TxnKey: other, Fence: fence, TimeoutMs: 60000, ProducerID: -1, ProducerEpoch: -1,
		Budget: x.r.s.txnBudget(other.ClusterID)})
	if err != nil {
		t.Fatal(err)
	}
	if t2.ProducerID == pid || t2.ProducerEpoch != 0 {
		t.Fatalf("vc-other's transaction got %d/%d, vc-dev's has producer id %d", t2.ProducerID, t2.ProducerEpoch, pid)
	}
	// vc-dev's producer cannot act on vc-other's transaction, nor the reverse.
	if err := st.AddTxnPartitions(x.ctx, store.TxnChange{TxnKey: other, Fence: fence, ProducerID: pid}, nil); err == nil {
		t.Fatal("vc-dev's producer id was accepted for vc-other's transaction")
	}
	wantCode(t, "vc-other's producer id in vc-dev", x.addPartitions(3, "shared", t2.ProducerID, 0, 0), kerr.InvalidProducerIDMapping.Code)
	if got := x.describe("shared"); got.ProducerID != pid {
		t.Fatalf("vc-dev describes producer id %d, want its own %d", got.ProducerID, pid)
	}
}
