package share

import (
	"errors"
	"slices"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

const lock = 30 * time.Second

func batches(spans ...[2]int64) []Batch {
	var out []Batch
	for _, s := range spans {
		out = append(out, Batch{First: s[0], Last: s[1]})
	}
	return out
}

func TestAcquireAcknowledgeAdvance(t *testing.T) {
	p := &Partition{}
	acq, used := p.Acquire("a", batches([2]int64{0, 9}, [2]int64{10, 19}), 5, 100, t0, lock)
	if !slices.Equal(acq, []Range{{0, 9, 1}}) || !slices.Equal(used, []int{0}) {
		t.Fatalf("acquired %v of batches %v, want 0-9 of batch 0 (whole batches)", acq, used)
	}
	// b gets the next batch; a's records are not available to it.
	acq, _ = p.Acquire("b", batches([2]int64{0, 9}, [2]int64{10, 19}), 5, 100, t0, lock)
	if !slices.Equal(acq, []Range{{10, 19, 1}}) {
		t.Fatalf("b acquired %v, want 10-19", acq)
	}
	if err := p.Acknowledge("b", 0, 0, []int8{AckAccept}, 5, t0, lock); !errors.Is(err, ErrInvalidRecordState) {
		t.Fatalf("b acknowledging a's record: %v, want ErrInvalidRecordState", err)
	}
	if err := p.Acknowledge("a", 0, 9, []int8{AckAccept}, 5, t0, lock); err != nil {
		t.Fatal(err)
	}
	if p.Start() != 10 || p.End() != 20 {
		t.Fatalf("SPSO %d SPEO %d after accepting 0-9, want 10 and 20", p.Start(), p.End())
	}
	// Per-offset types: accept, release, reject, gap.
	types := []int8{AckAccept, AckRelease, AckReject, AckGap, AckAccept, AckAccept, AckAccept, AckAccept, AckAccept, AckAccept}
	if err := p.Acknowledge("b", 10, 19, types, 5, t0, lock); err != nil {
		t.Fatal(err)
	}
	if p.Start() != 11 || p.FirstAvailable() != 11 {
		t.Fatalf("SPSO %d first available %d, want the released 11 for both", p.Start(), p.FirstAvailable())
	}
	acq, _ = p.Acquire("a", batches([2]int64{10, 19}), 5, 100, t0, lock)
	if !slices.Equal(acq, []Range{{11, 11, 2}}) {
		t.Fatalf("redelivery acquired %v, want 11 at its second delivery", acq)
	}
}

func TestLockExpiryAndDeliveryLimit(t *testing.T) {
	p := &Partition{}
	now := t0
	for d := int16(1); d <= 3; d++ {
		acq, _ := p.Acquire("a", batches([2]int64{0, 0}), 1, 100, now, lock)
		if !slices.Equal(acq, []Range{{0, 0, d}}) {
			t.Fatalf("delivery %d: acquired %v", d, acq)
		}
		if n := p.Expire(now.Add(lock-time.Millisecond), 3); n != 0 {
			t.Fatalf("expired %d before the lock ended", n)
		}
		now = now.Add(lock)
		if n := p.Expire(now, 3); n != 1 {
			t.Fatalf("expired %d at the lock's end, want 1", n)
		}
	}
	// Third delivery expired at the limit of 3: archived, never delivered again.
	if acq, _ := p.Acquire("b", batches([2]int64{0, 0}), 1, 100, now, lock); len(acq) != 0 || p.Start() != 1 {
		t.Fatalf("after the limit acquired %v with SPSO %d, want nothing and 1", acq, p.Start())
	}
}

func TestWindowAndGaps(t *testing.T) {
	p := &Partition{}
	// A gap before the batch (compaction) and a control batch are archived.
	bs := []Batch{{First: 3, Last: 4}, {First: 5, Last: 5, Control: true}, {First: 6, Last: 200}, {First: 201, Last: 300}}
	acq, used := p.Acquire("a", bs, 1000, 100, t0, lock)
	// The leading gap 0-2 is skipped by moving SPSO, not held in the
	// window, so the window of 100 spans 3-102.
	if !slices.Equal(acq, []Range{{3, 4, 1}, {6, 102, 1}}) || !slices.Equal(used, []int{0, 2}) {
		t.Fatalf("acquired %v of %v, want 3-4 and 6-102 (the window of 100 is full)", acq, used)
	}
	if p.Start() != 3 || p.End() != 103 {
		t.Fatalf("SPSO %d SPEO %d, want 3 and 103", p.Start(), p.End())
	}
}

// A compaction gap must not allocate a record per offset, whether nothing
// is in flight (SPSO jumps) or the window holds records of others (the
// gap is filled only up to the window).
func TestHugeGapBounded(t *testing.T) {
	p := &Partition{}
	acq, _ := p.Acquire("a", batches([2]int64{5_000_000, 5_000_009}), 10, 100, t0, lock)
	if !slices.Equal(acq, []Range{{5_000_000, 5_000_009, 1}}) || len(p.recs) != 10 {
		t.Fatalf("acquired %v with %d records in flight, want 5000000-5000009 and 10", acq, len(p.recs))
	}
	// a holds 10 records; b, acquiring nothing yet, meets a gap of 5M.
	acq, _ = p.Acquire("b", batches([2]int64{10_000_000, 10_000_009}), 10, 100, t0, lock)
	if len(acq) != 0 || len(p.recs) > 100 {
		t.Fatalf("acquired %v with %d records in flight, want nothing and at most the window of 100", acq, len(p.recs))
	}
}

// MaxRecordLocks holds: once the window is full and nothing in it is
// Available, further calls acquire nothing.
func TestFullWindowAcquiresNothing(t *testing.T) {
	p := &Partition{}
	bs := batches([2]int64{0, 99}, [2]int64{100, 109}, [2]int64{110, 119})
	if acq, _ := p.Acquire("a", bs, 1000, 100, t0, lock); !slices.Equal(acq, []Range{{0, 99, 1}}) {
		t.Fatalf("a acquired %v, want 0-99", acq)
	}
	for i := range 3 {
		if acq, _ := p.Acquire("b", bs, 1000, 100, t0, lock); len(acq) != 0 || p.End() != 100 {
			t.Fatalf("call %d: b acquired %v with SPEO %d, want nothing and 100", i, acq, p.End())
		}
	}
	// An empty window still takes a batch larger than itself.
	q := &Partition{}
	if acq, _ := q.Acquire("a", batches([2]int64{0, 149}), 1000, 100, t0, lock); len(acq) != 1 || acq[0].First != 0 {
		t.Fatalf("empty window acquired %v, want a run from 0", acq)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	p := &Partition{}
	p.Acquire("a", batches([2]int64{5, 14}), 10, 100, t0, lock)
	if err := p.Acknowledge("a", 7, 8, []int8{AckAccept}, 5, t0, lock); err != nil {
		t.Fatal(err)
	}
	if err := p.Acknowledge("a", 9, 9, []int8{AckRelease}, 5, t0, lock); err != nil {
		t.Fatal(err)
	}
	q, err := Unmarshal(p.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	// Locks do not survive: everything not finished is available again,
	// with its delivery count.
	if q.Start() != 5 || q.End() != 15 || q.Acquired() != 0 || q.FirstAvailable() != 5 {
		t.Fatalf("reloaded SPSO %d SPEO %d acquired %d", q.Start(), q.End(), q.Acquired())
	}
	acq, _ := q.Acquire("b", batches([2]int64{5, 14}), 10, 100, t0, lock)
	if want := []Range{{5, 6, 2}, {9, 14, 2}}; !slices.Equal(acq, want) {
		t.Fatalf("after reload acquired %v, want %v (7-8 stay acknowledged)", acq, want)
	}
	if _, err := Unmarshal([]byte{1, 2}); err == nil {
		t.Fatal("short state decoded")
	}
}

func TestAcknowledgeValidation(t *testing.T) {
	for _, tc := range []struct {
		name        string
		first, last int64
		types       []int8
		want        error
	}{
		{"reversed", 3, 2, []int8{AckAccept}, ErrInvalidAck},
		{"types length", 0, 3, []int8{AckAccept, AckAccept}, ErrInvalidAck},
		{"unknown type", 0, 0, []int8{9}, ErrInvalidAck},
		{"beyond SPEO", 0, 10, []int8{AckAccept}, ErrInvalidRecordState},
		{"ok", 0, 9, []int8{AckAccept}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Partition{}
			p.Acquire("a", batches([2]int64{0, 9}), 10, 100, t0, lock)
			if err := p.Acknowledge("a", tc.first, tc.last, tc.types, 5, t0, lock); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestAssign(t *testing.T) {
	ta := Topic{ID: [16]byte{1}, Name: "a", Partitions: 2}
	topics := map[string]Topic{"a": ta}
	six := make([][]string, 6)
	for i := range six {
		six[i] = []string{"a"}
	}
	per := map[int32]int{}
	for i, a := range assign(six, topics) {
		if len(a[ta.ID]) != 1 {
			t.Fatalf("member %d got %v, want one partition", i, a[ta.ID])
		}
		per[a[ta.ID][0]]++
	}
	if per[0] != 3 || per[1] != 3 {
		t.Fatalf("partitions shared %v, want 3 members each", per)
	}
	one := assign([][]string{{"a"}, {"b"}}, topics)
	if !slices.Equal(one[0][ta.ID], []int32{0, 1}) || len(one[1]) != 0 {
		t.Fatalf("one subscriber got %v and a non-subscriber %v", one[0], one[1])
	}
}
