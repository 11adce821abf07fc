package share

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/eddy-streams/eddy/internal/batch"
)

// ShareFetch (78) and ShareAcknowledge (79) meet their share-partitions
// here, on the partition's leader.

// Key names a share-partition: one group's view of one partition.
type Key struct {
	Cluster, Group string
	Topic          [16]byte
	Partition      int32
}

// Store persists share-partition state. Load returns what is stored and
// its state epoch, which an operator's reset bumps. Save writes
// each state only while this broker leads its partition at Epoch and the
// stored state is still at StateEpoch, and fails with an error matching
// ErrFenced otherwise (then nothing was written). A Store must be safe
// for concurrent use.
type Store interface {
	LoadSharePartition(ctx context.Context, k Key) (Stored, error)
	SaveSharePartitions(ctx context.Context, writes []Write) error
}

// Stored is a share-partition as a Store holds it: State as Marshal wrote
// it, or nil with Start set after an operator's reset (nothing in
// flight), or nil with Start -1 when there is none.
type Stored struct {
	State      []byte
	Start      int64
	StateEpoch int32
}

// Write is one share-partition state to store.
type Write struct {
	Key
	Epoch      int32 // the partition's leader epoch this broker holds it at
	StateEpoch int32 // the state epoch it was loaded at
	Start      int64 // SPSO, also inside State
	State      []byte
}

// ErrFenced is returned by a Store whose write lost the partition's
// leadership, or found the state reset since it was loaded; the broker
// answers NOT_LEADER_OR_FOLLOWER and the next request loads it anew.
var ErrFenced = errors.New("share: partition leadership lost")

// Errors of share sessions, each a Kafka error code the broker maps.
var (
	ErrSessionNotFound     = errors.New("share: share session not found")
	ErrInvalidSessionEpoch = errors.New("share: invalid share session epoch")
	ErrSessionLimit        = errors.New("share: share session limit reached")
)

type entry struct {
	saveMu sync.Mutex // held while writing, so writes land in order
	mu     sync.Mutex // guards the fields below
	p      *Partition
	epoch  int32         // the partition's leader epoch
	sepoch int32         // the state epoch it was loaded at
	ver    uint64        // bumped by every change to persist
	saved  uint64        // the ver last written (under saveMu)
	wake   chan struct{} // closed when records may have become available
	used   time.Time
	// dropped is set (under ps.mu, then e.mu) when the entry leaves
	// ps.parts: a request that got it before must not use it, or the
	// share-partition would live in two entries and deliver twice.
	dropped bool
}

// broadcast wakes waiting fetches; e.mu is held.
func (e *entry) broadcast() {
	close(e.wake)
	e.wake = make(chan struct{})
}

// Partitions is the share-partition half: the share-partitions of the
// partitions this broker leads and the share sessions of its ShareFetch
// clients. Create it with NewPartitions and run Run until the broker stops.
type Partitions struct {
	cfg   Config
	store Store

	mu       sync.Mutex
	parts    map[Key]*entry
	sessions map[SessionKey]*session
	// clusterSessions counts the sessions of each virtual cluster, for
	// the per-cluster bound.
	clusterSessions map[string]int
	lastID          uint64 // of the last session opened
}

// NewPartitions returns an empty share-partition half; cfg must Validate.
func NewPartitions(cfg Config, st Store) *Partitions {
	return &Partitions{cfg: cfg, store: st, parts: make(map[Key]*entry), sessions: make(map[SessionKey]*session),
		clusterSessions: make(map[string]int)}
}

// Offsets are a partition's log start and high watermark, as the leader
// sees them when a request arrives.
type Offsets struct{ LogStart, HighWatermark int64 }

// entry returns the loaded share-partition of k at leader epoch, loading it
// from the store (or starting it at Config.AutoOffsetReset) when it is not
// loaded at that epoch.
func (ps *Partitions) entry(ctx context.Context, k Key, epoch int32, offs Offsets) (*entry, error) {
	for {
		e, ok, err := ps.tryEntry(ctx, k, epoch, offs)
		if ok || err != nil {
			return e, err
		}
		// The entry was dropped (a failed load, fencing, an idle sweep)
		// while this request waited for it: take the map's current one.
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// tryEntry is one attempt of entry; ok is false when the entry it found
// was dropped before it could be used.
func (ps *Partitions) tryEntry(ctx context.Context, k Key, epoch int32, offs Offsets) (*entry, bool, error) {
	ps.mu.Lock()
	e := ps.parts[k]
	if e == nil || e.epoch != epoch {
		if e != nil {
			e.mu.Lock()
			e.dropped = true // replaced at a new leader epoch
			e.mu.Unlock()
		}
		e = &entry{epoch: epoch, wake: make(chan struct{})}
		ps.parts[k] = e
	}
	ps.mu.Unlock()
	e.saveMu.Lock()
	defer e.saveMu.Unlock()
	e.mu.Lock()
	loaded, dropped := e.p != nil, e.dropped
	e.mu.Unlock()
	if dropped {
		return nil, false, nil
	}
	if !loaded {
		st, err := ps.store.LoadSharePartition(ctx, k)
		if err != nil {
			ps.drop(k, e)
			return nil, false, err
		}
		p := &Partition{start: offs.HighWatermark}
		switch {
		case st.State != nil:
			if p, err = Unmarshal(st.State); err != nil {
				ps.drop(k, e)
				return nil, false, err
			}
		case st.Start >= 0:
			p.start = st.Start
		case ps.cfg.AutoOffsetReset == "earliest":
			p.start = offs.LogStart
		}
		e.mu.Lock()
		e.p, e.sepoch = p, st.StateEpoch
		e.mu.Unlock()
	}
	e.mu.Lock()
	if e.dropped {
		// Dropped by the idle sweep or Forget since the check above; the
		// sweep reads used under e.mu, so after this check it sees the
		// entry in use.
		e.mu.Unlock()
		return nil, false, nil
	}
	e.p.Trim(offs.LogStart)
	if e.p.start > offs.HighWatermark {
		// The log was truncated below the stored start (records deleted
		// and the partition recreated at the same id cannot happen, but a
		// DeleteRecords past it can): start at the end.
		e.p.Reset(offs.HighWatermark)
	}
	e.used = time.Now()
	e.mu.Unlock()
	return e, true, nil
}

// drop removes e from the map and marks it dropped; the lock order is
// ps.mu, then e.mu.
func (ps *Partitions) drop(k Key, e *entry) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.dropLocked(k, e)
}

func (ps *Partitions) dropLocked(k Key, e *entry) {
	if ps.parts[k] == e {
		delete(ps.parts, k)
	}
	e.mu.Lock()
	e.dropped = true
	e.mu.Unlock()
}

// Fetched is what Acquire hands a member of one share-partition.
type Fetched struct {
	Records  []byte // whole batches holding the acquired records
	Acquired []Range
	// Wake is closed when records of this share-partition may have become
	// available (released, expired or the start moved); a fetch that got
	// nothing waits on it and on new data.
	Wake <-chan struct{}
}

// Acquire reads from the first available offset of the share-partition k
// through read (the same read path as Fetch: raw batches, at least one
// whole batch, up to the caller's byte budget), locks up to maxRecords of
// the available records it returned for member and writes the new
// delivery counts before returning them.
func (ps *Partitions) Acquire(ctx context.Context, k Key, epoch int32, offs Offsets, member string, maxRecords int, read func(from int64) ([]byte, error)) (Fetched, error) {
	e, err := ps.entry(ctx, k, epoch, offs)
	if err != nil {
		return Fetched{}, err
	}
	e.mu.Lock()
	if e.p.ArchiveSpent(int16(ps.cfg.DeliveryCountLimit)) {
		e.ver++ // written below, or by the next write
	}
	from, wake := e.p.FirstAvailable(), e.wake
	e.mu.Unlock()
	out := Fetched{Wake: wake}
	if from >= offs.HighWatermark {
		return out, nil
	}
	raw, err := read(from)
	if err != nil || len(raw) == 0 {
		return out, err
	}
	var spans []Batch
	var raws [][]byte
	batch.Each(raw, func(h batch.Header, b []byte) bool {
		spans = append(spans, Batch{First: h.BaseOffset, Last: h.LastOffset(), Control: h.Control()})
		raws = append(raws, b)
		return true
	})
	e.mu.Lock()
	start, end := e.p.start, e.p.End()
	acq, used := e.p.Acquire(member, spans, maxRecords, ps.cfg.MaxRecordLocks, time.Now(), ps.cfg.RecordLockDuration)
	if len(acq) > 0 || e.p.start != start || e.p.End() != end {
		e.ver++ // records acquired, or gaps and control batches archived
	}
	ver := e.ver
	e.mu.Unlock()
	if err := ps.persist(ctx, k, e, ver); err != nil {
		// The locks stand; they expire if nobody can acknowledge them.
		return out, err
	}
	for _, i := range used {
		out.Records = append(out.Records, raws[i]...)
	}
	out.Acquired = acq
	return out, nil
}

// Ack is one acknowledgement batch of ShareFetch or ShareAcknowledge.
type Ack struct {
	First, Last int64
	Types       []int8
}

// Acknowledge applies member's acknowledgements to the share-partition k
// and writes the result before returning: an acknowledgement that returned
// nil survives any crash. The batches apply whole or not at all: every
// batch is checked before any changes, so an ErrInvalidRecordState or
// ErrInvalidAck (batches that overlap included) leaves the share-partition
// as it was.
func (ps *Partitions) Acknowledge(ctx context.Context, k Key, epoch int32, offs Offsets, member string, acks []Ack) error {
	if len(acks) == 0 {
		return nil // a partition named without batches: nothing to load, change or write
	}
	e, err := ps.entry(ctx, k, epoch, offs)
	if err != nil {
		return err
	}
	if err := disjoint(acks); err != nil {
		return err
	}
	now := time.Now()
	e.mu.Lock()
	for _, a := range acks {
		if err = e.p.check(member, a.First, a.Last, a.Types); err != nil {
			break
		}
	}
	changed, released, start := false, false, e.p.start
	if err == nil {
		for _, a := range acks {
			c, r := e.p.apply(a.First, a.Last, a.Types, int16(ps.cfg.DeliveryCountLimit), now, ps.cfg.RecordLockDuration)
			changed, released = changed || c, released || r
		}
	}
	if changed {
		e.ver++
	}
	ver := e.ver
	// Only a released record or a moved start lets a waiting fetch acquire
	// more; waking them for an accept inside the window is wasted work.
	if released || e.p.start != start {
		e.broadcast()
	}
	e.mu.Unlock()
	if !changed {
		return err // a renewal or a rejected request: nothing stored changed
	}
	if perr := ps.persist(ctx, k, e, ver); perr != nil {
		return perr
	}
	return err
}

// disjoint rejects acknowledgement batches that overlap: each is checked
// against the state before any applies, so a record acknowledged twice in
// one request would otherwise be changed twice.
func disjoint(acks []Ack) error {
	if len(acks) < 2 {
		return nil
	}
	sorted := slices.Clone(acks)
	slices.SortFunc(sorted, func(a, b Ack) int { return cmp.Compare(a.First, b.First) })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].First <= sorted[i-1].Last {
			return fmt.Errorf("%w: batches %d-%d and %d-%d overlap", ErrInvalidAck, sorted[i-1].First, sorted[i-1].Last, sorted[i].First, sorted[i].Last)
		}
	}
	return nil
}

// persist writes e's state unless a write at or after ver already did:
// concurrent requests of one share-partition share a write.
func (ps *Partitions) persist(ctx context.Context, k Key, e *entry, ver uint64) error {
	e.saveMu.Lock()
	defer e.saveMu.Unlock()
	if e.saved >= ver {
		return nil
	}
	e.mu.Lock()
	w := Write{Key: k, Epoch: e.epoch, StateEpoch: e.sepoch, Start: e.p.start, State: e.p.Marshal()}
	latest := e.ver
	e.mu.Unlock()
	if err := ps.store.SaveSharePartitions(ctx, []Write{w}); err != nil {
		if errors.Is(err, ErrFenced) {
			ps.drop(k, e)
		}
		return fmt.Errorf("share: writing %s/%x-%d: %w", k.Group, k.Topic, k.Partition, err)
	}
	e.saved = latest
	return nil
}

// release gives back every record member holds in the share-partition k,
// if it is loaded; the stored state does not change (a lock is never
// stored).
func (ps *Partitions) release(k Key, member string) {
	ps.mu.Lock()
	e := ps.parts[k]
	ps.mu.Unlock()
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.p != nil && e.p.ReleaseMember(member, int16(ps.cfg.DeliveryCountLimit)) > 0 {
		e.broadcast()
	}
}

// Run expires acquisition locks on time, drops idle share-partitions and
// share sessions, until ctx ends.
func (ps *Partitions) Run(ctx context.Context) {
	every(ctx, min(max(ps.cfg.RecordLockDuration/20, 20*time.Millisecond), time.Second), ps.sweep)
}

func (ps *Partitions) sweep(now time.Time) {
	ps.mu.Lock()
	entries := make(map[Key]*entry, len(ps.parts))
	for k, e := range ps.parts {
		entries[k] = e
	}
	var gone []SessionKey
	var goneParts [][]TP
	for k, s := range ps.sessions {
		if now.Sub(s.used) > ps.cfg.SessionTimeout {
			gone = append(gone, k)
			goneParts = append(goneParts, s.list())
			ps.removeSession(k)
		}
	}
	ps.mu.Unlock()
	for i, sk := range gone {
		for _, tp := range goneParts[i] {
			ps.release(Key{sk.Cluster, sk.Group, tp.Topic, tp.Partition}, sk.Member)
		}
	}
	limit := int16(ps.cfg.DeliveryCountLimit)
	for k, e := range entries {
		e.mu.Lock()
		if e.p != nil && e.p.Expire(now, limit) > 0 {
			e.broadcast()
		}
		e.mu.Unlock()
		// Decide and drop under both locks, so a request that set used
		// since is never left holding a dropped entry it was told is live.
		ps.mu.Lock()
		e.mu.Lock()
		idle := e.p != nil && e.p.Acquired() == 0 && now.Sub(e.used) > 10*ps.cfg.RecordLockDuration
		e.mu.Unlock()
		if idle {
			ps.dropLocked(k, e)
		}
		ps.mu.Unlock()
	}
}

// Forget drops the loaded share-partitions for which match is true (an
// offset reset or deletion through the admin APIs); the next request loads
// them again from the store.
func (ps *Partitions) Forget(match func(Key) bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for k, e := range ps.parts {
		if match(k) {
			ps.dropLocked(k, e)
		}
	}
}

// Loaded lists the share-partitions loaded here with their in-flight
// counts, for the lag metrics.
func (ps *Partitions) Loaded() []Status {
	ps.mu.Lock()
	entries := make(map[Key]*entry, len(ps.parts))
	for k, e := range ps.parts {
		entries[k] = e
	}
	ps.mu.Unlock()
	out := make([]Status, 0, len(entries))
	for k, e := range entries {
		e.mu.Lock()
		if e.p != nil {
			out = append(out, Status{Key: k, Start: e.p.start, End: e.p.End(), Acquired: e.p.Acquired()})
		}
		e.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b Status) int {
		if a.Group != b.Group {
			return strings.Compare(a.Group, b.Group)
		}
		return int(a.Partition - b.Partition)
	})
	return out
}

// Status is a loaded share-partition's SPSO, SPEO and locked records.
type Status struct {
	Key
	Start, End int64
	Acquired   int
}
