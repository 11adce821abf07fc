package chaos

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Log is every partition of the workload's topic as read back at the end
// of a run, once the faults were healed.
type Log struct {
	Records map[int32][]Record // in offset order
	End     map[int32]int64    // the high watermark when the read began
}

// Violation is one broken invariant.
type Violation struct {
	Kind      string // one of the Kind* constants
	Partition int32
	Offset    int64
	At        time.Time // when the history saw it (the ack, the read)
	Detail    string
}

// Kinds of violation.
const (
	KindLost        = "lost"             // an acks=all record acknowledged, not in the log
	KindMoved       = "moved"            // an acks=all record stored elsewhere than acknowledged
	KindDuplicate   = "duplicate"        // an idempotent record stored twice
	KindTwoRecords  = "offset reused"    // one offset named two records
	KindOrder       = "order"            // a producer's records out of order in a partition
	KindAboveHWM    = "above watermark"  // a consumer saw what the committed log does not hold
	KindRedelivered = "redelivered"      // the group re-read below a confirmed commit
	KindNoProgress  = "no progress"      // the run acknowledged nothing
	KindOrphanKept  = "orphan kept"      // an object PUT and never committed outlived garbage collection
	KindObject      = "object damaged"   // an object an index row references is missing, short or unregistered
	KindEOS         = "exactly-once"     // the copiers' committed output and offsets disagree (eos.go)
	maxPerKind      = 25                 // violations kept per kind; the rest are counted
	idempotentTag   = valueAcksAll + "-" // values of idempotent producers
)

// Result is what Check found.
type Result struct {
	Violations  []Violation    // at most maxPerKind of each kind
	Counts      map[string]int // violations by kind, all of them
	AcksAll     int            // acks=all records acknowledged
	AcksOne     int            // acks=1 records acknowledged
	LostAcksOne int            // acks=1 records acknowledged and lost: counted, allowed
	Reads       int
	Commits     int
	Stored      int // records in the log
}

// OK reports whether no invariant was broken.
func (r Result) OK() bool { return len(r.Counts) == 0 }

// Total is the number of violations of every kind; len(Counts) would be
// the number of kinds.
func (r Result) Total() int {
	n := 0
	for _, c := range r.Counts {
		n += c
	}
	return n
}

type checker struct{ res Result }

func (c *checker) add(v Violation) { c.res.add(v) }

// add counts v and keeps it unless maxPerKind of its kind are kept.
func (r *Result) add(v Violation) {
	r.Counts[v.Kind]++
	if r.Counts[v.Kind] <= maxPerKind {
		r.Violations = append(r.Violations, v)
	}
}

type pos struct {
	p int32
	o int64
}

// Check checks a run's history against the log read back at its end:
//
//   - every acks=all acknowledgement is in the log, once, where it was
//     acknowledged (acks=1 losses are counted, as Kafka allows them);
//   - no record of an idempotent producer is stored twice;
//   - no offset names two records (acknowledged, read or stored);
//   - each producer's records are in its order within a partition;
//   - consumers were handed only offsets below their fetch's high
//     watermark, holding what the log holds there;
//   - once a commit was confirmed, no member of the group was handed a
//     record of that partition below it.
func Check(h *History, log Log) Result {
	c := &checker{res: Result{Counts: map[string]int{}}}
	at := map[pos]string{}
	where := map[string][]pos{}
	for p, recs := range log.Records {
		for _, r := range recs {
			at[pos{p, r.Offset}] = r.Value
			where[r.Value] = append(where[r.Value], pos{p, r.Offset})
			c.res.Stored++
		}
	}
	c.acks(h.Acks(), at, where)
	c.stored(log, where)
	c.reads(h.Reads(), h.Commits(), at, log.End)
	slices.SortStableFunc(c.res.Violations, func(a, b Violation) int { return a.At.Compare(b.At) })
	return c.res
}

func (c *checker) acks(acks []Ack, at map[pos]string, where map[string][]pos) {
	for _, a := range acks {
		if !a.AcksAll {
			c.res.AcksOne++
			if len(where[a.Value]) == 0 {
				c.res.LostAcksOne++
			}
			continue
		}
		c.res.AcksAll++
		v := Violation{Partition: a.Partition, Offset: a.Offset, At: a.At}
		got, ok := at[pos{a.Partition, a.Offset}]
		switch {
		case len(where[a.Value]) == 0:
			v.Kind = KindLost
			v.Detail = fmt.Sprintf("%s acknowledged at %d/%d (sent %s), not in the log", a.Value, a.Partition, a.Offset, a.Sent.Format(timeFmt))
			if ok {
				v.Detail += "; that offset holds " + got
			}
		case ok && got != a.Value:
			v.Kind = KindTwoRecords
			v.Detail = fmt.Sprintf("%s acknowledged at %d/%d, where the log holds %s (%s is at %v)", a.Value, a.Partition, a.Offset, got, a.Value, where[a.Value])
		case !ok:
			v.Kind = KindMoved
			v.Detail = fmt.Sprintf("%s acknowledged at %d/%d, stored at %v", a.Value, a.Partition, a.Offset, where[a.Value])
		default:
			continue
		}
		c.add(v)
	}
}

// stored checks the log itself: duplicates and each producer's order.
func (c *checker) stored(log Log, where map[string][]pos) {
	for val, ps := range where {
		if len(ps) > 1 && strings.HasPrefix(val, idempotentTag) {
			c.add(Violation{Kind: KindDuplicate, Partition: ps[1].p, Offset: ps[1].o,
				Detail: fmt.Sprintf("%s stored %d times, at %v", val, len(ps), ps)})
		}
	}
	for p, recs := range log.Records {
		type seen struct {
			seq int64
			rec Record
		}
		last := map[string]seen{} // producer → its last record here
		for _, r := range recs {
			prod, seq, ok := parseValue(r.Value)
			if !ok {
				continue
			}
			if prev, ok := last[prod]; ok && seq < prev.seq {
				c.add(Violation{Kind: KindOrder, Partition: p, Offset: r.Offset,
					Detail: fmt.Sprintf("%s at offset %d after %s at offset %d", r.Value, r.Offset, prev.rec.Value, prev.rec.Offset)})
			}
			last[prod] = seen{seq, r}
		}
	}
}

func (c *checker) reads(reads []Read, commits []Commit, at map[pos]string, end map[int32]int64) {
	c.res.Reads, c.res.Commits = len(reads), len(commits)
	// Per partition, the confirmed commits in time order with the highest
	// offset committed so far.
	type mark struct {
		at     time.Time
		offset int64
		by     string
	}
	marks := map[int32][]mark{}
	slices.SortStableFunc(commits, func(a, b Commit) int { return a.At.Compare(b.At) })
	for _, cm := range commits {
		ms := marks[cm.Partition]
		m := mark{cm.At, cm.Offset, cm.Member}
		if n := len(ms); n > 0 && ms[n-1].offset > m.offset {
			m.offset, m.by = ms[n-1].offset, ms[n-1].by
		}
		marks[cm.Partition] = append(ms, m)
	}
	for _, r := range reads {
		v := Violation{Partition: r.Partition, Offset: r.Offset, At: r.At}
		got, ok := at[pos{r.Partition, r.Offset}]
		switch {
		case r.Offset >= r.HWM:
			v.Kind = KindAboveHWM
			v.Detail = fmt.Sprintf("%s handed %s at %d/%d with a high watermark of %d", r.Reader, r.Value, r.Partition, r.Offset, r.HWM)
		case !ok && r.Offset >= end[r.Partition]:
			v.Kind = KindAboveHWM
			v.Detail = fmt.Sprintf("%s handed %s at %d/%d, beyond the log's end %d", r.Reader, r.Value, r.Partition, r.Offset, end[r.Partition])
		case ok && got != r.Value:
			v.Kind = KindTwoRecords
			v.Detail = fmt.Sprintf("%s handed %s at %d/%d, where the log holds %s", r.Reader, r.Value, r.Partition, r.Offset, got)
		}
		if v.Kind != "" {
			c.add(v)
			continue
		}
		if !r.Group {
			continue
		}
		ms := marks[r.Partition]
		i := sort.Search(len(ms), func(i int) bool { return !ms[i].at.Before(r.At) }) // commits confirmed before the read: ms[:i]
		if i > 0 && r.Offset < ms[i-1].offset {
			m := ms[i-1]
			c.add(Violation{Kind: KindRedelivered, Partition: r.Partition, Offset: r.Offset, At: r.At,
				Detail: fmt.Sprintf("%s handed %s at %d/%d at %s, after %s's commit of %d was confirmed at %s",
					r.Reader, r.Value, r.Partition, r.Offset, r.At.Format(timeFmt), m.by, m.offset, m.at.Format(timeFmt))})
		}
	}
}

// parseValue splits a workload value, "<acks>-<producer>-<seq>".
func parseValue(v string) (producer string, seq int64, ok bool) {
	i := strings.LastIndexByte(v, '-')
	if i < 0 {
		return "", 0, false
	}
	seq, err := strconv.ParseInt(v[i+1:], 10, 64)
	return v[:i], seq, err == nil
}

const timeFmt = "15:04:05.000"
