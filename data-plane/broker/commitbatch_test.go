package broker

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/data-plane/group"
	"github.com/eddy-streams/eddy/internal/pgtest"
	"github.com/eddy-streams/eddy/internal/poll"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// batchRig is a commit batcher on a real database, with a group
// coordinator in front of it as the broker wires them. Broker 1 leads
// slot 1 at epoch 5 and slot 2 at epoch 3; slot 9 (epoch 1) is the plug:
// hold its row locked and the writer's statement for a plug commit waits,
// so commits queue up behind it.
type batchRig struct {
	t       testing.TB
	ctx     context.Context
	st      *store.Store
	waiting func(context.Context) bool // a statement on coordinator_slots waits for a row lock
	b       *commitBatcher
	coord   *group.Coordinator
}

var (
	rigSlot1 = store.SlotFence{Slot: 1, BrokerID: 1, LeaderEpoch: 5}
	rigSlot2 = store.SlotFence{Slot: 2, BrokerID: 1, LeaderEpoch: 3}
	rigPlug  = store.SlotFence{Slot: 9, BrokerID: 1, LeaderEpoch: 1}
)

func newBatchRig(t testing.TB) *batchRig {
	t.Helper()
	url := pgtest.URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	st, err := store.Open(ctx, url, 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	for _, vc := range []string{"vc1", "vc2"} {
		if err := st.EnsureCluster(ctx, vc, vc); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Register(ctx, 1, "127.0.0.1", 9092, "", time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, f := range []store.SlotFence{rigSlot1, rigSlot2, rigPlug} {
		if err := st.AssignSlots(ctx, f.BrokerID, f.LeaderEpoch, f.Slot); err != nil {
			t.Fatal(err)
		}
	}
	r := &batchRig{t: t, ctx: ctx, st: st, waiting: pgtest.LockWatch(t, url, "coordinator_slots"),
		b: newCommitBatcher(st, prometheus.NewRegistry())}
	r.b.start()
	t.Cleanup(func() {
		if err := r.b.shutdown(context.Background()); err != nil {
			t.Errorf("batcher shutdown: %v", err)
		}
	})
	r.coord = group.New(group.DefaultConfig(), offsetStore{st, r.b}, nil)
	t.Cleanup(r.coord.Close)
	return r
}

func rigCommit(cluster, grp string, fence store.SlotFence, offset int64) store.OffsetCommit {
	return store.OffsetCommit{ClusterID: cluster, Group: grp, Fence: fence, Offsets: []store.GroupOffset{
		{Topic: "t", Partition: 0, Offset: offset, LeaderEpoch: -1, Metadata: fmt.Sprint("m", offset)},
		{Topic: "t", Partition: 1, Offset: offset + 1, LeaderEpoch: -1, Metadata: fmt.Sprint("m", offset+1)},
	}}
}

// stored returns the offset of t/0 of a group, -1 when none, after
// checking t/1 holds the offset after it (both written together).
func (r *batchRig) stored(cluster, grp string) int64 {
	r.t.Helper()
	offs, err := r.st.FetchOffsets(r.ctx, cluster, grp)
	if err != nil {
		r.t.Fatal(err)
	}
	if len(offs) == 0 {
		return -1
	}
	if len(offs) != 2 || offs[1].Offset != offs[0].Offset+1 || offs[0].Metadata != fmt.Sprint("m", offs[0].Offset) {
		r.t.Fatalf("%s/%s: torn commit %+v", cluster, grp, offs)
	}
	return offs[0].Offset
}

// plug locks the plug slot's row and queues a plug commit behind it; it
// returns once the writer's statement waits on the lock, with a function
// that releases the lock and returns the plug commit's outcome.
func (r *batchRig) plug() (release func() error) {
	r.t.Helper()
	// A move to the epoch the slot has: its row stays locked until rolled
	// back, and nothing changes.
	lock, err := r.st.BeginSlotMove(r.ctx, rigPlug.Slot, rigPlug.LeaderEpoch)
	if err != nil {
		r.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.b.commit(r.ctx, rigCommit("vc1", "plug", rigPlug, 1)) }()
	r.waitLockWait("the plug commit")
	return func() error {
		if err := lock.Rollback(r.ctx); err != nil {
			r.t.Fatal(err)
		}
		return <-done
	}
}

// waitLockWait waits until a statement on coordinator_slots waits for a
// row lock: the writer is held up.
func (r *batchRig) waitLockWait(what string) {
	r.t.Helper()
	r.waitFor(what+" to wait on the slot lock", func() bool { return r.waiting(r.ctx) })
}

func (r *batchRig) queued() int {
	r.b.mu.Lock()
	defer r.b.mu.Unlock()
	return len(r.b.queue)
}

func (r *batchRig) waitFor(what string, cond func() bool) {
	r.t.Helper()
	poll.Until(r.t, time.Minute, what, poll.True(cond))
}

func statements(b *commitBatcher) int { return int(testutil.ToFloat64(b.batches)) }

func rowsWritten(t *testing.T, b *commitBatcher) (sum float64, count uint64) {
	var m dto.Metric
	if err := b.rows.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleSum(), m.GetHistogram().GetSampleCount()
}

// TestCommitBatcherGroupsCommits: a lone commit is one statement; commits
// that queue while a statement is in flight go out together in the next
// one; many concurrent committers make fewer statements than commits, and
// every commit is readable afterwards.
func TestCommitBatcherGroupsCommits(t *testing.T) {
	r := newBatchRig(t)
	if err := r.b.commit(r.ctx, rigCommit("vc1", "alone", rigSlot1, 10)); err != nil {
		t.Fatal(err)
	}
	if n := statements(r.b); n != 1 {
		t.Fatalf("a lone commit took %d statements", n)
	}
	if got := r.stored("vc1", "alone"); got != 10 {
		t.Fatalf("lone commit stored %d", got)
	}

	// 64 committers queue behind a statement in flight: one statement
	// writes all of them.
	const committers = 64
	release := r.plug()
	var wg sync.WaitGroup
	errs := make([]error, committers)
	for i := range committers {
		wg.Go(func() {
			errs[i] = r.b.commit(r.ctx, rigCommit([]string{"vc1", "vc2"}[i%2], fmt.Sprint("g", i), []store.SlotFence{rigSlot1, rigSlot2}[i%2], int64(100+i)))
		})
	}
	r.waitFor("64 queued commits", func() bool { return r.queued() == committers })
	if err := release(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n := statements(r.b); n != 3 {
		t.Fatalf("%d statements for the lone, the plug and 64 queued commits, want 3", n)
	}
	if sum, count := rowsWritten(t, r.b); sum != 2*(committers+2) || count != 3 {
		t.Fatalf("rows histogram: sum %v count %d, want %d rows in 3 statements", sum, count, 2*(committers+2))
	}
	for i := range committers {
		if got := r.stored([]string{"vc1", "vc2"}[i%2], fmt.Sprint("g", i)); got != int64(100+i) {
			t.Fatalf("g%d stored %d, want %d", i, got, 100+i)
		}
	}

	// Free-running: 64 committers, 20 commits each.
	before := statements(r.b)
	const rounds = 20
	for i := range committers {
		wg.Go(func() {
			for k := range rounds {
				if err := r.b.commit(r.ctx, rigCommit("vc1", fmt.Sprint("free", i), rigSlot1, int64(1000*k+i))); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	n := statements(r.b) - before
	t.Logf("%d concurrent commits took %d statements", committers*rounds, n)
	if n >= committers*rounds {
		t.Fatalf("%d commits took %d statements: nothing was batched", committers*rounds, n)
	}
	for i := range committers {
		if got := r.stored("vc1", fmt.Sprint("free", i)); got != int64(1000*(rounds-1)+i) {
			t.Fatalf("free%d stored %d, want its last commit %d", i, got, 1000*(rounds-1)+i)
		}
	}
}

// TestCommitBatcherSlotMove: the slot of some commits moves while they
// queue behind a statement that waits for the move. Through the real
// coordinator, those commits answer NOT_COORDINATOR and write nothing; the
// commits of another slot in the same statement succeed.
func TestCommitBatcherSlotMove(t *testing.T) {
	r := newBatchRig(t)
	// The move: slot 1 goes to epoch 6, not yet committed. A commit under
	// epoch 5 waits for it, holding up the writer.
	move, err := r.st.BeginSlotMove(r.ctx, rigSlot1.Slot, 6)
	if err != nil {
		t.Fatal(err)
	}
	defer move.Rollback(context.Background())
	first := make(chan int16, 1)
	go func() { first <- r.offsetCommit("vc1", "first", rigSlot1, 1) }()
	r.waitLockWait("the first commit")
	type answer struct {
		cluster, grp string
		fence        store.SlotFence
		code         int16
	}
	answers := []*answer{
		{cluster: "vc1", grp: "moved-a", fence: rigSlot1},
		{cluster: "vc2", grp: "stays-a", fence: rigSlot2},
		{cluster: "vc1", grp: "moved-b", fence: rigSlot1},
		{cluster: "vc1", grp: "stays-b", fence: rigSlot2},
	}
	var wg sync.WaitGroup
	for i, a := range answers {
		wg.Go(func() { a.code = r.offsetCommit(a.cluster, a.grp, a.fence, int64(10+i)) })
	}
	r.waitFor("4 queued commits", func() bool { return r.queued() == len(answers) })
	if err := move.Commit(r.ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if code := <-first; code != kerr.NotCoordinator.Code {
		t.Fatalf("commit in flight across the move: code %d, want NOT_COORDINATOR", code)
	}
	for i, a := range answers {
		want, stored := int16(0), int64(10+i)
		if a.fence == rigSlot1 {
			want, stored = kerr.NotCoordinator.Code, -1
		}
		if a.code != want {
			t.Errorf("%s: code %d, want %d", a.grp, a.code, want)
		}
		if got := r.stored(a.cluster, a.grp); got != stored {
			t.Errorf("%s: stored %d, want %d", a.grp, got, stored)
		}
	}
	if n := statements(r.b); n != 2 {
		t.Fatalf("%d statements, want 2 (the first commit, then the 4 queued together)", n)
	}
}

// offsetCommit sends a simple (generation -1) OffsetCommit for t/0 and t/1
// through the coordinator under fence, as handleOffsetCommit does, and
// returns the error code of t/0 (checking t/1 got the same).
func (r *batchRig) offsetCommit(cluster, grp string, fence store.SlotFence, offset int64) int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.Generation = 8, grp, -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "t"
	for p := range int32(2) {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = p, offset+int64(p), -1
		rp.Metadata = new(fmt.Sprint("m", offset+int64(p)))
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp := r.coord.OffsetCommit(context.WithValue(r.ctx, fenceKey{}, fence), cluster, req)
	codes := resp.Topics[0].Partitions
	if codes[0].ErrorCode != codes[1].ErrorCode {
		r.t.Errorf("%s: partitions answered %d and %d", grp, codes[0].ErrorCode, codes[1].ErrorCode)
	}
	return codes[0].ErrorCode
}

// TestCommitBatcherShutdownDrains: shutdown refuses new commits but writes
// every queued one before the writer exits; none is lost.
func TestCommitBatcherShutdownDrains(t *testing.T) {
	r := newBatchRig(t)
	release := r.plug()
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = r.b.commit(r.ctx, rigCommit("vc1", fmt.Sprint("q", i), rigSlot1, int64(i))) })
	}
	r.waitFor("queued commits", func() bool { return r.queued() == n })
	shut := make(chan error, 1)
	go func() { shut <- r.b.shutdown(r.ctx) }()
	r.waitFor("shutdown to start", func() bool {
		r.b.mu.Lock()
		defer r.b.mu.Unlock()
		return !r.b.running
	})
	if err := r.b.commit(r.ctx, rigCommit("vc1", "late", rigSlot1, 1)); !errors.Is(err, errCommitsClosed) {
		t.Fatalf("commit during shutdown: %v, want errCommitsClosed", err)
	}
	select {
	case err := <-shut:
		t.Fatalf("shutdown returned (%v) while a statement was in flight", err)
	default:
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("queued commit %d: %v", i, err)
		}
		if got := r.stored("vc1", fmt.Sprint("q", i)); got != int64(i) {
			t.Errorf("queued commit %d: stored %d", i, got)
		}
	}
	if got := r.stored("vc1", "late"); got != -1 {
		t.Errorf("a commit refused at shutdown was written: %d", got)
	}
	select {
	case <-r.b.done:
	default:
		t.Fatal("the writer goroutine is still running after shutdown")
	}
}

// TestCommitBatcherShutdownDeadline: past the shutdown deadline the
// statement in flight is cancelled and the queued commits fail; none of
// them reports success, and the writer exits.
func TestCommitBatcherShutdownDeadline(t *testing.T) {
	r := newBatchRig(t)
	release := r.plug()
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = r.b.commit(r.ctx, rigCommit("vc1", fmt.Sprint("q", i), rigSlot1, int64(i))) })
	}
	r.waitFor("queued commits", func() bool { return r.queued() == n })
	expired, cancel := context.WithCancel(r.ctx)
	cancel()
	if err := r.b.shutdown(expired); !errors.Is(err, context.Canceled) {
		t.Fatalf("shutdown past its deadline: %v", err)
	}
	wg.Wait()
	if err := release(); err == nil {
		t.Error("the cancelled plug commit reported success")
	}
	for i, err := range errs {
		if err == nil {
			t.Errorf("queued commit %d reported success after an aborted shutdown", i)
		}
		if got := r.stored("vc1", fmt.Sprint("q", i)); got != -1 {
			t.Errorf("queued commit %d: stored %d after failing", i, got)
		}
	}
}

// TestCommitBatcherCallerGivesUp: a caller whose ctx ends while its commit
// is queued gets ctx.Err(), and the commit is dropped rather than written.
func TestCommitBatcherCallerGivesUp(t *testing.T) {
	r := newBatchRig(t)
	release := r.plug()
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan error, 1)
	go func() { done <- r.b.commit(ctx, rigCommit("vc1", "impatient", rigSlot1, 5)) }()
	r.waitFor("the queued commit", func() bool { return r.queued() == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("commit of a caller that gave up: %v", err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if err := r.b.commit(r.ctx, rigCommit("vc1", "patient", rigSlot1, 6)); err != nil {
		t.Fatal(err)
	}
	if got := r.stored("vc1", "impatient"); got != -1 {
		t.Fatalf("the abandoned commit was written: %d", got)
	}
}

// BenchmarkOffsetCommits: commits/s of 64 concurrent committers, each
// committing 2 partitions of its own group in a loop, batched across
// callers (the broker's path) versus one statement per call
// (store.CommitOffsets, the path before batching). The private test
// Postgres runs with fsync off; with DATABASE_URL pointing at a server
// with durable commits the difference grows, as every statement then waits
// for a WAL flush.
//
//	go test -run '^$' -bench OffsetCommits -benchtime 20000x ./data-plane/broker
func BenchmarkOffsetCommits(b *testing.B) {
	const committers = 64
	for _, batched := range []bool{true, false} {
		name := "per-call"
		if batched {
			name = "batched"
		}
		b.Run(name, func(b *testing.B) {
			r := newBatchRig(b)
			var next atomic.Int64
			b.SetParallelism(max(1, committers/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := next.Add(1)
				cluster, grp, fence := "vc1", fmt.Sprint("bench", i), rigSlot1
				if i%2 == 0 {
					cluster, fence = "vc2", rigSlot2
				}
				for k := int64(0); pb.Next(); k++ {
					c := rigCommit(cluster, grp, fence, k)
					var err error
					if batched {
						err = r.b.commit(r.ctx, c)
					} else {
						err = r.st.CommitOffsets(r.ctx, c.ClusterID, c.Group, c.Fence, c.Offsets)
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
			if batched {
				b.ReportMetric(float64(b.N)/float64(statements(r.b)), "commits/statement")
			}
		})
	}
}
