package share

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// memStore is a Store in memory; load, when set, runs before each load
// and may fail it.
type memStore struct {
	mu     sync.Mutex
	states map[Key]Write
	saves  int
	load   func(k Key) error
}

func newMemStore() *memStore { return &memStore{states: make(map[Key]Write)} }

func (m *memStore) LoadSharePartition(ctx context.Context, k Key) (Stored, error) {
	if m.load != nil {
		if err := m.load(k); err != nil {
			return Stored{}, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.states[k]
	if !ok {
		return Stored{Start: -1}, nil
	}
	return Stored{State: w.State, Start: w.Start, StateEpoch: w.StateEpoch}, nil
}

func (m *memStore) SaveSharePartitions(ctx context.Context, ws []Write) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range ws {
		m.states[w.Key] = w
	}
	m.saves++
	return nil
}

func (m *memStore) saveCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.saves
}

var testKey = Key{Cluster: "c", Group: "g", Topic: [16]byte{1}, Partition: 0}

// acquired loads the share-partition of testKey and locks offsets from-to
// for member, as Partitions.Acquire does after its read.
func acquired(t *testing.T, ps *Partitions, member string, from, to int64) *entry {
	t.Helper()
	e, err := ps.entry(context.Background(), testKey, 1, Offsets{LogStart: 0, HighWatermark: 0})
	if err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if acq, _ := e.p.Acquire(member, []Batch{{First: from, Last: to}}, 1000, ps.cfg.MaxRecordLocks, t0, lock); len(acq) == 0 {
		t.Fatalf("%s acquired nothing of %d-%d", member, from, to)
	}
	e.ver++
	return e
}

// A request's batches apply whole or not at all: a valid batch before an
// invalid one is not applied.
func TestAcknowledgeAllOrNothing(t *testing.T) {
	ps := NewPartitions(DefaultConfig(), newMemStore())
	ctx := context.Background()
	e := acquired(t, ps, "a", 0, 9)
	acks := []Ack{{First: 0, Last: 4, Types: []int8{AckAccept}}, {First: 20, Last: 20, Types: []int8{AckAccept}}}
	if err := ps.Acknowledge(ctx, testKey, 1, Offsets{}, "a", acks); !errors.Is(err, ErrInvalidRecordState) {
		t.Fatalf("got %v, want ErrInvalidRecordState", err)
	}
	e.mu.Lock()
	start, held := e.p.Start(), e.p.Acquired()
	e.mu.Unlock()
	if start != 0 || held != 10 {
		t.Fatalf("after a failed request SPSO %d with %d acquired, want 0 and 10 (nothing applied)", start, held)
	}
	overlap := []Ack{{First: 0, Last: 4, Types: []int8{AckAccept}}, {First: 4, Last: 5, Types: []int8{AckRelease}}}
	if err := ps.Acknowledge(ctx, testKey, 1, Offsets{}, "a", overlap); !errors.Is(err, ErrInvalidAck) {
		t.Fatalf("overlapping batches: got %v, want ErrInvalidAck", err)
	}
	if err := ps.Acknowledge(ctx, testKey, 1, Offsets{}, "a", acks[:1]); err != nil {
		t.Fatal(err)
	}
}

// Only a change is written, and only a release or a moved start wakes
// waiting fetches.
func TestAcknowledgeWritesAndWakesOnlyOnChange(t *testing.T) {
	st := newMemStore()
	ps := NewPartitions(DefaultConfig(), st)
	ctx := context.Background()
	e := acquired(t, ps, "a", 0, 9)
	wake := func() <-chan struct{} { e.mu.Lock(); defer e.mu.Unlock(); return e.wake }
	closed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	w, saves := wake(), st.saveCount()
	if err := ps.Acknowledge(ctx, testKey, 1, Offsets{}, "a", nil); err != nil {
		t.Fatal(err)
	}
	if err := ps.Acknowledge(ctx, testKey, 1, Offsets{}, "a", []Ack{{First: 0, Last: 9, Types: []int8{AckRenew}}}); err != nil {
		t.Fatal(err)
	}
	if err := ps.Acknowledge(ctx, testKey, 1, Offsets{}, "a", []Ack{{First: 20, Last: 20, Types: []int8{AckAccept}}}); !errors.Is(err, ErrInvalidRecordState) {
		t.Fatalf("got %v, want ErrInvalidRecordState", err)
	}
	if st.saveCount() != saves || closed(w) {
		t.Fatalf("no batches, a renewal and a rejected batch wrote %d times (woke %v), want none", st.saveCount()-saves, closed(w))
	}
	// An accept inside the window is written but wakes nobody.
	if err := ps.Acknowledge(ctx, testKey, 1, Offsets{}, "a", []Ack{{First: 5, Last: 5, Types: []int8{AckAccept}}}); err != nil {
		t.Fatal(err)
	}
	if st.saveCount() != saves+1 || closed(w) {
		t.Fatalf("accept of 5 wrote %d times (woke %v), want once and no wake", st.saveCount()-saves, closed(w))
	}
	if err := ps.Acknowledge(ctx, testKey, 1, Offsets{}, "a", []Ack{{First: 6, Last: 6, Types: []int8{AckRelease}}}); err != nil {
		t.Fatal(err)
	}
	if !closed(w) {
		t.Fatal("a release did not wake waiting fetches")
	}
}

// A request waiting for an entry whose load failed must not go on with
// that entry once it left the map: the share-partition would be loaded
// twice and its records delivered twice.
func TestFailedLoadLeavesOneEntry(t *testing.T) {
	st := newMemStore()
	loading, fail := make(chan struct{}), make(chan struct{})
	var once sync.Once
	st.load = func(Key) error {
		first := false
		once.Do(func() { first = true })
		if !first {
			return nil
		}
		close(loading)
		<-fail
		return errors.New("store down")
	}
	ps := NewPartitions(DefaultConfig(), st)
	ctx := context.Background()
	var wg sync.WaitGroup
	var failed error
	wg.Go(func() { _, failed = ps.entry(ctx, testKey, 1, Offsets{}) })
	<-loading
	var waiter *entry
	var werr error
	wg.Go(func() { waiter, werr = ps.entry(ctx, testKey, 1, Offsets{}) })
	// Let the second request reach the entry's write lock, which the
	// blocked load holds.
	time.Sleep(50 * time.Millisecond)
	close(fail)
	wg.Wait()
	if failed == nil || werr != nil {
		t.Fatalf("first load: %v, second: %v; want an error and success", failed, werr)
	}
	ps.mu.Lock()
	current := ps.parts[testKey]
	ps.mu.Unlock()
	if waiter != current {
		t.Fatal("the waiting request uses an entry that is no longer the share-partition's")
	}
}

// rawBatch is a record batch header spanning first-last, enough for
// batch.Each.
func rawBatch(first, last int64) []byte {
	rb := kmsg.RecordBatch{FirstOffset: first, LastOffsetDelta: int32(last - first), Magic: 2, ProducerID: -1, NumRecords: int32(last - first + 1)}
	rb.Length = int32(len(rb.AppendTo(nil)) - 12)
	return rb.AppendTo(nil)
}

// A record whose lock expired at its last allowed delivery is archived in
// memory only; after the share-partition is dropped and loaded again
// (idle, failover) it must not be delivered a limit+1-th time.
func TestDeliveryLimitSurvivesReload(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DeliveryCountLimit = 2
	cfg.AutoOffsetReset = "earliest"
	st := newMemStore()
	ps := NewPartitions(cfg, st)
	ctx := context.Background()
	offs := Offsets{LogStart: 0, HighWatermark: 1}
	read := func(from int64) ([]byte, error) { return rawBatch(0, 0), nil }
	now := time.Now()
	for d := int16(1); d <= 2; d++ {
		f, err := ps.Acquire(ctx, testKey, 1, offs, "a", 10, read)
		if err != nil || len(f.Acquired) != 1 || f.Acquired[0].Deliveries != d {
			t.Fatalf("delivery %d: acquired %v, %v", d, f.Acquired, err)
		}
		now = now.Add(2 * cfg.RecordLockDuration)
		ps.sweep(now) // the lock expires
	}
	ps.Forget(func(Key) bool { return true }) // as an idle drop or a new leader
	f, err := ps.Acquire(ctx, testKey, 1, offs, "b", 10, read)
	if err != nil || len(f.Acquired) != 0 {
		t.Fatalf("after a reload acquired %v (%v), want nothing: delivered twice already", f.Acquired, err)
	}
}

// A share session holds at most MaxSessionPartitions partitions, and one
// virtual cluster at most half of MaxSessions sessions.
func TestSessionLimits(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxSessions, cfg.MaxSessionPartitions = 4, 2
	ps := NewPartitions(cfg, newMemStore())
	tp := func(p int32) TP { return TP{Topic: [16]byte{1}, Partition: p} }
	a := SessionKey{Cluster: "a", Group: "g", Member: "m1"}
	if _, _, err := ps.Session(a, 0, []TP{tp(0), tp(1), tp(2)}, nil, true); !errors.Is(err, ErrSessionLimit) {
		t.Fatalf("opening with 3 partitions: %v, want ErrSessionLimit", err)
	}
	if _, _, err := ps.Session(a, 0, []TP{tp(0), tp(1)}, nil, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ps.Session(a, 1, []TP{tp(2)}, nil, true); !errors.Is(err, ErrSessionLimit) {
		t.Fatalf("growing to 3 partitions: %v, want ErrSessionLimit", err)
	}
	// Refused whole: the same epoch swaps one for another.
	if got, _, err := ps.Session(a, 1, []TP{tp(2)}, []TP{tp(0)}, true); err != nil || len(got) != 2 {
		t.Fatalf("swapping a partition: %v %v", got, err)
	}
	if _, _, err := ps.Session(SessionKey{Cluster: "a", Group: "g", Member: "m2"}, 0, nil, nil, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ps.Session(SessionKey{Cluster: "a", Group: "g", Member: "m3"}, 0, nil, nil, true); !errors.Is(err, ErrSessionLimit) {
		t.Fatalf("a third session of cluster a (of 4 a broker): %v, want ErrSessionLimit", err)
	}
	if _, _, err := ps.Session(SessionKey{Cluster: "b", Group: "g", Member: "m1"}, 0, nil, nil, true); err != nil {
		t.Fatalf("cluster b after a took its half: %v", err)
	}
	ps.Close(a)
	if _, _, err := ps.Session(SessionKey{Cluster: "a", Group: "g", Member: "m3"}, 0, nil, nil, true); err != nil {
		t.Fatalf("cluster a after closing a session: %v", err)
	}
}
