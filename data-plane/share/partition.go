package share

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// State is the delivery state of one in-flight record (KIP-932).
type State uint8

const (
	Available    State = iota // may be acquired
	Acquired                  // locked by one member until it acknowledges or the lock expires
	Acknowledged              // accepted: done
	Archived                  // rejected, a gap, or over the delivery limit: never delivered again
)

func (s State) String() string {
	switch s {
	case Available:
		return "Available"
	case Acquired:
		return "Acquired"
	case Acknowledged:
		return "Acknowledged"
	case Archived:
		return "Archived"
	}
	return fmt.Sprintf("State(%d)", s)
}

// Acknowledgement types of ShareFetch and ShareAcknowledge.
const (
	AckGap     int8 = 0
	AckAccept  int8 = 1
	AckRelease int8 = 2
	AckReject  int8 = 3
	AckRenew   int8 = 4 // KIP-1222: extend the lock
)

// ErrInvalidRecordState is an acknowledgement of a record the member does
// not hold (not acquired, acquired by another member, or outside the
// in-flight window): Kafka's INVALID_RECORD_STATE. Nothing of the
// acknowledgement batch is applied.
var ErrInvalidRecordState = errors.New("share: record is not acquired by this member")

// ErrInvalidAck is an acknowledgement batch that is malformed: Kafka's
// INVALID_REQUEST.
var ErrInvalidAck = errors.New("share: invalid acknowledgement batch")

type record struct {
	state      State
	deliveries int16
	owner      string    // the member holding an Acquired record
	expiry     time.Time // when its lock ends
}

// Partition is the state of one share-partition: the share-partition start
// offset (SPSO), below which every record is done, and the in-flight
// records from it up to the share-partition end offset (SPEO). Offsets at
// or above SPEO have never been acquired. Partition is not safe for
// concurrent use; Partitions guards each with a mutex.
type Partition struct {
	start int64
	recs  []record // recs[i] is offset start+i
}

// End is the share-partition end offset.
func (p *Partition) End() int64 { return p.start + int64(len(p.recs)) }

// Start is the share-partition start offset.
func (p *Partition) Start() int64 { return p.start }

// Range is a run of acquired offsets with the delivery count they were
// delivered with.
type Range struct {
	First, Last int64
	Deliveries  int16
}

// Batch is the offset span of one record batch read from the log; a
// control batch (transaction markers) is archived, never delivered.
type Batch struct {
	First, Last int64
	Control     bool
}

// FirstAvailable is the offset reads for member must start at: the first
// Available in-flight record, else SPEO.
func (p *Partition) FirstAvailable() int64 {
	for i, r := range p.recs {
		if r.state == Available {
			return p.start + int64(i)
		}
	}
	return p.End()
}

// Acquire locks the Available offsets of batches (in log order) for member
// until now+lock, at most maxRecords of them but whole batches, as Kafka's
// batch-optimized acquisition; the window SPEO-SPSO grows at most to
// maxInFlight, except that a call finding the window empty may pass it to
// acquire its first record (else a batch larger than the window could
// never be delivered). Once the window is full and nothing in it is
// Available nothing is acquired, as Kafka. It returns the acquired runs
// and the indexes of the batches that hold one.
func (p *Partition) Acquire(member string, batches []Batch, maxRecords, maxInFlight int, now time.Time, lock time.Duration) (acquired []Range, used []int) {
	n := 0
	wasEmpty := len(p.recs) == 0
batches:
	for bi, b := range batches {
		if n >= maxRecords {
			break
		}
		// Offsets between batches hold no record (compaction): they are
		// done before anyone could acquire them. With nothing in flight the
		// start jumps over them; otherwise they are archived one by one, but
		// only up to the window, so a gap of millions of offsets never
		// allocates millions of records.
		if len(p.recs) == 0 && p.start < b.First {
			p.start = b.First
		}
		for p.End() < b.First && len(p.recs) < maxInFlight {
			p.recs = append(p.recs, record{state: Archived})
		}
		took := false
		for off := max(b.First, p.start); off <= b.Last; off++ {
			i := off - p.start
			if i > int64(len(p.recs)) {
				break batches // the window is full short of this batch
			}
			if i == int64(len(p.recs)) {
				if len(p.recs) >= maxInFlight && (!wasEmpty || n > 0) {
					if took {
						used = append(used, bi)
					}
					break batches
				}
				p.recs = append(p.recs, record{})
			}
			r := &p.recs[i]
			if r.state != Available {
				continue
			}
			if b.Control {
				r.state = Archived
				continue
			}
			r.state, r.owner, r.expiry = Acquired, member, now.Add(lock)
			r.deliveries++
			n++
			took = true
			if k := len(acquired) - 1; k >= 0 && acquired[k].Last == off-1 && acquired[k].Deliveries == r.deliveries {
				acquired[k].Last = off
			} else {
				acquired = append(acquired, Range{First: off, Last: off, Deliveries: r.deliveries})
			}
		}
		if took {
			used = append(used, bi)
		}
	}
	p.advance()
	return acquired, used
}

// Acknowledge applies one acknowledgement batch of member: types holds one
// type for the whole range or one per offset. Release gives a record back
// (archived once it reached limit deliveries), accept and reject finish it,
// gap archives it, renew extends its lock to now+lock. The batch is
// checked whole before anything changes.
func (p *Partition) Acknowledge(member string, first, last int64, types []int8, limit int16, now time.Time, lock time.Duration) error {
	if err := p.check(member, first, last, types); err != nil {
		return err
	}
	p.apply(first, last, types, limit, now, lock)
	return nil
}

// check is Acknowledge's validation of one batch, changing nothing.
func (p *Partition) check(member string, first, last int64, types []int8) error {
	if first > last || (len(types) != 1 && int64(len(types)) != last-first+1) {
		return ErrInvalidAck
	}
	for _, t := range types {
		if t < AckGap || t > AckRenew {
			return ErrInvalidAck
		}
	}
	if first < p.start || last >= p.End() {
		return fmt.Errorf("%w: %d-%d is outside [%d, %d)", ErrInvalidRecordState, first, last, p.start, p.End())
	}
	for off := first; off <= last; off++ {
		if r := p.recs[off-p.start]; r.state != Acquired || r.owner != member {
			return fmt.Errorf("%w: offset %d is %s", ErrInvalidRecordState, off, r.state)
		}
	}
	return nil
}

// apply is Acknowledge's change of a batch that check accepted. It reports
// whether the stored form changed (anything but a renewal: locks are not
// stored) and whether a record became Available again.
func (p *Partition) apply(first, last int64, types []int8, limit int16, now time.Time, lock time.Duration) (changed, released bool) {
	for off := first; off <= last; off++ {
		t := types[0]
		if len(types) > 1 {
			t = types[off-first]
		}
		r := &p.recs[off-p.start]
		switch t {
		case AckAccept:
			r.state = Acknowledged
		case AckReject, AckGap:
			r.state = Archived
		case AckRelease:
			p.release(r, limit)
			released = released || r.state == Available
		case AckRenew:
			r.expiry = now.Add(lock)
			continue
		}
		r.owner = ""
		changed = true
	}
	p.advance()
	return changed, released
}

// release makes an acquired record available again, or archives it once it
// was delivered limit times.
func (p *Partition) release(r *record, limit int16) {
	r.state, r.owner = Available, ""
	if r.deliveries >= limit {
		r.state = Archived
	}
}

// ArchiveSpent archives the Available records already delivered limit
// times and reports whether there were any. A record whose last lock ended
// by expiry or a closed session is archived in memory only (nothing is
// written then), and the stored form keeps an Acquired record as
// Available: after a reload such a record must not be delivered again.
func (p *Partition) ArchiveSpent(limit int16) bool {
	n := 0
	for i := range p.recs {
		if r := &p.recs[i]; r.state == Available && r.deliveries >= limit {
			r.state = Archived
			n++
		}
	}
	if n > 0 {
		p.advance()
	}
	return n > 0
}

// advance moves SPSO past the finished records.
func (p *Partition) advance() {
	i := 0
	for i < len(p.recs) && (p.recs[i].state == Acknowledged || p.recs[i].state == Archived) {
		i++
	}
	p.recs = p.recs[i:]
	p.start += int64(i)
	if len(p.recs) == 0 {
		p.recs = nil // let the old array go
	}
}

// Expire releases the records whose lock ended by now and reports how many.
func (p *Partition) Expire(now time.Time, limit int16) int {
	n := 0
	for i := range p.recs {
		if r := &p.recs[i]; r.state == Acquired && !r.expiry.After(now) {
			p.release(r, limit)
			n++
		}
	}
	if n > 0 {
		p.advance()
	}
	return n
}

// ReleaseMember releases every record member holds (its share session
// closed or it left the group) and reports how many.
func (p *Partition) ReleaseMember(member string, limit int16) int {
	n := 0
	for i := range p.recs {
		if r := &p.recs[i]; r.state == Acquired && r.owner == member {
			p.release(r, limit)
			n++
		}
	}
	if n > 0 {
		p.advance()
	}
	return n
}

// Acquired counts the records currently locked.
func (p *Partition) Acquired() int {
	n := 0
	for _, r := range p.recs {
		if r.state == Acquired {
			n++
		}
	}
	return n
}

// Reset moves SPSO to off and forgets the in-flight records (an offset
// reset, or records removed by retention below off).
func (p *Partition) Reset(off int64) {
	p.start, p.recs = off, nil
}

// Trim drops the in-flight records below logStart, which retention removed.
func (p *Partition) Trim(logStart int64) {
	if logStart <= p.start {
		return
	}
	if logStart >= p.End() {
		p.Reset(logStart)
		return
	}
	p.recs = p.recs[logStart-p.start:]
	p.start = logStart
}

// The persisted form: SPSO, then one entry per run of in-flight records
// that differ from "Available, never delivered", in offset order:
//
//	+-----------+---------------------------------------------+
//	| start i64 | first i64 | last i64 | state u8 | deliv i16 |...
//	+-----------+---------------------------------------------+
//
// big-endian. Acquired records are stored as Available with their
// delivery count: a lock does not survive its broker, so after a restart
// they are delivered again, counted.
const runSize = 8 + 8 + 1 + 2

// Marshal encodes the state for the store.
func (p *Partition) Marshal() []byte {
	out := binary.BigEndian.AppendUint64(nil, uint64(p.start))
	for i := 0; i < len(p.recs); {
		st, d := stored(p.recs[i])
		j := i + 1
		for j < len(p.recs) {
			if s2, d2 := stored(p.recs[j]); s2 != st || d2 != d {
				break
			}
			j++
		}
		if st != Available || d != 0 {
			out = binary.BigEndian.AppendUint64(out, uint64(p.start+int64(i)))
			out = binary.BigEndian.AppendUint64(out, uint64(p.start+int64(j-1)))
			out = append(out, byte(st))
			out = binary.BigEndian.AppendUint16(out, uint16(d))
		}
		i = j
	}
	return out
}

func stored(r record) (State, int16) {
	if r.state == Acquired {
		return Available, r.deliveries
	}
	return r.state, r.deliveries
}

// Unmarshal decodes what Marshal encoded.
func Unmarshal(b []byte) (*Partition, error) {
	if len(b) < 8 || (len(b)-8)%runSize != 0 {
		return nil, fmt.Errorf("share: stored state of %d bytes", len(b))
	}
	p := &Partition{start: int64(binary.BigEndian.Uint64(b))}
	for b = b[8:]; len(b) > 0; b = b[runSize:] {
		first := int64(binary.BigEndian.Uint64(b))
		last := int64(binary.BigEndian.Uint64(b[8:]))
		st, d := State(b[16]), int16(binary.BigEndian.Uint16(b[17:]))
		if first < p.End() || last < first || st > Archived || last-first > 1<<24 {
			return nil, fmt.Errorf("share: stored run %d-%d out of order", first, last)
		}
		for p.End() < first {
			p.recs = append(p.recs, record{})
		}
		for off := first; off <= last; off++ {
			p.recs = append(p.recs, record{state: st, deliveries: d})
		}
	}
	p.advance()
	return p, nil
}

// Lag is the records of a stored share-partition not yet acknowledged or
// archived, up to the high watermark hw (KIP-932's share-partition lag):
// from the start offset to hw, less the finished records in flight. A nil
// state is a share-partition reset to start.
func Lag(state []byte, start, hw int64) int64 {
	p := &Partition{start: start}
	if state != nil {
		var err error
		if p, err = Unmarshal(state); err != nil {
			return 0
		}
	}
	if hw <= p.start {
		return 0
	}
	lag := hw - p.start
	for i, r := range p.recs {
		if p.start+int64(i) < hw && (r.state == Acknowledged || r.state == Archived) {
			lag--
		}
	}
	return lag
}
