package chaos

import (
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	t0 := time.Now()
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	ack := func(v string, p int32, o int64, all bool) Ack {
		return Ack{Value: v, Partition: p, Offset: o, AcksAll: all, At: at(1)}
	}
	log := func(recs ...string) Log {
		l := Log{Records: map[int32][]Record{}, End: map[int32]int64{0: int64(len(recs))}}
		for i, v := range recs {
			l.Records[0] = append(l.Records[0], Record{Offset: int64(i), Value: v})
		}
		return l
	}
	for _, tc := range []struct {
		name    string
		acks    []Ack
		reads   []Read
		commits []Commit
		log     Log
		want    map[string]int
		lost1   int
	}{
		{name: "clean",
			acks:    []Ack{ack("all-p0-1", 0, 0, true), ack("all-p0-2", 0, 1, true), ack("one-p0-1", 0, 2, false)},
			reads:   []Read{{Reader: "m", Group: true, Partition: 0, Offset: 0, Value: "all-p0-1", HWM: 3, At: at(2)}},
			commits: []Commit{{Member: "m", Partition: 0, Offset: 1, At: at(3)}},
			log:     log("all-p0-1", "all-p0-2", "one-p0-1")},
		{name: "acks=all lost",
			acks: []Ack{ack("all-p0-1", 0, 0, true), ack("all-p0-2", 0, 1, true)},
			log:  log("all-p0-1"), want: map[string]int{KindLost: 1}},
		{name: "acks=1 lost is counted, not a violation",
			acks: []Ack{ack("all-p0-1", 0, 0, true), ack("one-p0-1", 0, 1, false)},
			log:  log("all-p0-1"), lost1: 1},
		{name: "offset names two records",
			acks: []Ack{ack("all-p0-1", 0, 0, true), ack("all-p1-1", 0, 0, true)},
			log:  log("all-p0-1", "all-p1-1"), want: map[string]int{KindTwoRecords: 1}},
		{name: "moved",
			acks: []Ack{ack("all-p0-1", 0, 5, true)},
			log:  log("all-p0-1"), want: map[string]int{KindMoved: 1}},
		{name: "idempotent duplicate",
			acks: []Ack{ack("all-p0-1", 0, 0, true)},
			log:  log("all-p0-1", "all-p0-1"), want: map[string]int{KindDuplicate: 1}},
		{name: "acks=1 duplicate is allowed",
			log: log("one-p0-1", "one-p0-1")},
		{name: "order",
			log: log("all-p0-2", "all-p0-1"), want: map[string]int{KindOrder: 1}},
		{name: "read at the fetch's high watermark",
			reads: []Read{{Reader: "t", Partition: 0, Offset: 1, Value: "all-p0-2", HWM: 1, At: at(2)}},
			log:   log("all-p0-1", "all-p0-2"), want: map[string]int{KindAboveHWM: 1}},
		{name: "read what the log never held",
			reads: []Read{{Reader: "t", Partition: 0, Offset: 1, Value: "all-p0-2", HWM: 5, At: at(2)}},
			log:   log("all-p0-1"), want: map[string]int{KindAboveHWM: 1}},
		{name: "read another record than the log's",
			reads: []Read{{Reader: "t", Partition: 0, Offset: 0, Value: "all-p9-1", HWM: 5, At: at(2)}},
			log:   log("all-p0-1"), want: map[string]int{KindTwoRecords: 1}},
		{name: "redelivered below a confirmed commit",
			reads: []Read{
				{Reader: "a", Group: true, Partition: 0, Offset: 0, Value: "all-p0-1", HWM: 2, At: at(1)},
				{Reader: "a", Group: true, Partition: 0, Offset: 1, Value: "all-p0-2", HWM: 2, At: at(1)},
				{Reader: "b", Group: true, Partition: 0, Offset: 1, Value: "all-p0-2", HWM: 2, At: at(3)},
			},
			commits: []Commit{{Member: "a", Partition: 0, Offset: 2, At: at(2)}},
			log:     log("all-p0-1", "all-p0-2"), want: map[string]int{KindRedelivered: 1}},
		// Reading again below a commit is allowed until the coordinator
		// confirms it: a read before the confirmation is no violation.
		{name: "redelivered below a commit not yet confirmed is allowed",
			reads: []Read{
				{Reader: "a", Group: true, Partition: 0, Offset: 0, Value: "all-p0-1", HWM: 2, At: at(1)},
				{Reader: "a", Group: true, Partition: 0, Offset: 1, Value: "all-p0-2", HWM: 2, At: at(1)},
				{Reader: "b", Group: true, Partition: 0, Offset: 0, Value: "all-p0-1", HWM: 2, At: at(3)},
			},
			commits: []Commit{{Member: "a", Partition: 0, Offset: 2, At: at(4)}},
			log:     log("all-p0-1", "all-p0-2")},
		{name: "read again at the confirmed committed offset is allowed",
			reads: []Read{
				{Reader: "a", Group: true, Partition: 0, Offset: 1, Value: "all-p0-2", HWM: 2, At: at(1)},
				{Reader: "b", Group: true, Partition: 0, Offset: 1, Value: "all-p0-2", HWM: 2, At: at(3)},
				{Reader: "t", Partition: 0, Offset: 0, Value: "all-p0-1", HWM: 2, At: at(4)},
			},
			commits: []Commit{{Member: "a", Partition: 0, Offset: 1, At: at(2)}},
			log:     log("all-p0-1", "all-p0-2")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHistory()
			for _, a := range tc.acks {
				h.ack(a)
			}
			h.read(tc.reads)
			h.commit(tc.commits)
			res := Check(h, tc.log)
			if len(res.Counts) != len(tc.want) {
				t.Fatalf("violations %v, want %v: %+v", res.Counts, tc.want, res.Violations)
			}
			for k, n := range tc.want {
				if res.Counts[k] != n {
					t.Fatalf("violations %v, want %v: %+v", res.Counts, tc.want, res.Violations)
				}
			}
			if res.LostAcksOne != tc.lost1 {
				t.Errorf("acks=1 lost %d, want %d", res.LostAcksOne, tc.lost1)
			}
		})
	}
}

func TestPlan(t *testing.T) {
	a := Plan(7, time.Hour, 10*time.Second, nil, 3, 2)
	b := Plan(7, time.Hour, 10*time.Second, nil, 3, 2)
	if len(a) != len(b) {
		t.Fatalf("the same seed planned %d and %d faults", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("step %d: %v vs %v", i, a[i], b[i])
		}
	}
	// About one fault every 10s: a fault's own duration delays the next
	// on its lane, so allow a wide band.
	if n := len(a); n < 200 || n > 500 {
		t.Errorf("%d faults in an hour, want about 360", n)
	}
	kinds := map[FaultKind]int{}
	lastEnd := map[bool]time.Duration{}
	for _, s := range a {
		kinds[s.Kind]++
		if s.At < lastEnd[isStorage(s.Kind)] {
			t.Errorf("%v begins before the previous fault of its lane ended", s)
		}
		lastEnd[isStorage(s.Kind)] = s.At + s.For
		if s.At+s.For > time.Hour {
			t.Errorf("%v ends after the run", s)
		}
	}
	if len(kinds) != len(ProcessFaults)+len(StorageFaults) {
		t.Errorf("kinds drawn: %v", kinds)
	}
	if c := Plan(8, time.Hour, 10*time.Second, nil, 3, 2); len(c) == len(a) && c[0] == a[0] && c[1] == a[1] {
		t.Error("another seed planned the same faults")
	}
}
