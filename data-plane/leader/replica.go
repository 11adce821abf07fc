package leader

// Reads of partitions this broker does not lead: zone-aware fetch (KIP-392
// preferred read replicas). Committed data is in the object store or
// inline in Postgres, both indexed in Postgres, so any broker can serve it:
// a replica here is no copy of the log, only the partition's committed
// offsets as Postgres last said them and where the last read stopped.
//
// Contract:
//   - a replica read never returns an offset at or above the high
//     watermark committed in Postgres (invariant 4): acks=1 data that is
//     only in the leader's WAL and memory is never served here, and a
//     replica may lag its leader by up to ReplicaInterval;
//   - read_committed reads stop at the last stable offset as committed
//     (store.CommittedOffsetsOf), and name the aborted transactions from
//     Postgres: below that offset every marker and aborted_txns row is
//     committed;
//   - reads go through the same path as the leader's reads of old data
//     (readRemote: the index, the read cache, the inline rows), behind a
//     small tail of the most recent batches read, which the consumers at
//     the head share. Data not
//     yet uploaded is read from its inline rows in Postgres, which lives
//     in one zone: eddy_replica_read_bytes_total{source} says how much
//     (docs/architecture.md, "Zone-aware traffic");
//   - Postgres sees at most one offsets query per partition per
//     ReplicaInterval from reads (concurrent reads share it; a fetch of
//     many partitions reads them in one, RefreshReplicas), and one query
//     per ReplicaInterval for all the partitions long polls wait on, not
//     one per waiting fetch. A read at an offset past the known high
//     watermark reads the offsets again first, so a consumer the leader
//     just sent here with its newest offset is not told it is out of range.
//
// runReplicas, owned by Run, polls the watched partitions and forgets
// replicas unused for replicaIdle.

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/eddy-streams/eddy/internal/batch"
	"github.com/eddy-streams/eddy/internal/store"
	"github.com/prometheus/client_golang/prometheus"
)

// replicaIdle is how long a replica nobody reads or watches is kept.
const replicaIdle = time.Minute

// replicaTailBytes bounds a replica's tail (at most --cache-bytes): the
// head a zone's consumers share, not a cache of the log.
const replicaTailBytes = 1 << 20

type replicas struct {
	mu    sync.Mutex
	parts map[int64]*replica
	kick  chan struct{} // a first watcher arrived: start polling
	reads prometheus.Counter
	bytes *prometheus.CounterVec // by source: object, inline
}

// replica is a partition read here without being led here.
type replica struct {
	id int64

	refreshMu sync.Mutex // one offsets query at a time per partition

	mu       sync.Mutex
	off      store.CommittedOffsets
	at       time.Time // when off was read; zero: never
	used     time.Time
	watchers map[chan<- struct{}]struct{}
	readPos  // where reads of old data stopped (manager.go)

	// tail holds the most recent committed batches read here, whole and
	// back to back, offsets [tailBase, tailEnd), at most replicaTailBytes
	// (but one batch): the consumers of a zone reading the head of a
	// partition share one read of it from Postgres or the object store.
	// Offsets are never reused, so what it holds never goes stale. Bytes
	// once in it are never written again (it only grows at its end or is
	// replaced).
	tail              []byte
	tailBase, tailEnd int64
}

func newReplicas(reg prometheus.Registerer) *replicas {
	rs := &replicas{
		parts: map[int64]*replica{},
		kick:  make(chan struct{}, 1),
		reads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_replica_offset_reads_total",
			Help: "Queries of committed offsets for partitions this broker serves reads of without leading them (zone-aware fetch)."}),
	}
	rs.bytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eddy_replica_read_bytes_total",
		Help: "Record bytes read for partitions this broker serves without leading them, by source: object (the object store, through the read cache) or inline (Postgres rows not yet uploaded)."},
		[]string{"source"})
	if reg != nil {
		reg.MustRegister(rs.reads, rs.bytes)
	}
	return rs
}

func (rs *replicas) get(id int64) *replica {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r := rs.parts[id]
	if r == nil {
		r = &replica{id: id, watchers: map[chan<- struct{}]struct{}{}}
		rs.parts[id] = r
	}
	r.mu.Lock()
	r.used = time.Now()
	r.mu.Unlock()
	return r
}

// counted counts n bytes read from source if l is a replica.
func (rs *replicas) counted(l remoteLog, source string, n int) {
	if _, ok := l.(*replica); ok && n > 0 {
		rs.bytes.WithLabelValues(source).Add(float64(n))
	}
}

func (r *replica) partitionID() int64 { return r.id }

func (r *replica) learnLogStart(off int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if off > r.off.LogStartOffset {
		r.off.LogStartOffset = off
	}
}

// set records offsets read at 'at' and wakes the watchers if they moved.
func (r *replica) set(o store.CommittedOffsets, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if at.Before(r.at) {
		return // an older reading finished late
	}
	// Retention may have moved the start higher than this reading saw.
	o.LogStartOffset = max(o.LogStartOffset, r.off.LogStartOffset)
	moved := r.at.IsZero() || o != r.off
	r.off, r.at = o, at
	if moved {
		for w := range r.watchers {
			select {
			case w <- struct{}{}:
			default:
			}
		}
	}
}

// replicaOffsets returns the replica's committed offsets, read again
// from Postgres when older than ReplicaInterval, or when offset is past
// the high watermark last read (a reading taken after this call began
// is then needed). Concurrent callers share a query.
func (m *Manager) replicaOffsets(ctx context.Context, r *replica, offset int64) (store.CommittedOffsets, error) {
	start := time.Now()
	fresh := func() (store.CommittedOffsets, bool) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.at.IsZero() {
			return r.off, false
		}
		if offset > r.off.HighWatermark {
			return r.off, !r.at.Before(start)
		}
		return r.off, time.Since(r.at) < m.cfg.ReplicaInterval
	}
	if o, ok := fresh(); ok {
		return o, nil
	}
	r.refreshMu.Lock()
	defer r.refreshMu.Unlock()
	if o, ok := fresh(); ok {
		return o, nil // another read refreshed it meanwhile
	}
	at := time.Now()
	m.replicas.reads.Inc()
	got, err := m.store.CommittedOffsetsOf(ctx, []int64{r.id})
	if err != nil {
		return store.CommittedOffsets{}, err
	}
	o, ok := got[r.id]
	if !ok {
		return store.CommittedOffsets{}, fmt.Errorf("leader: replica read of partition %d: %w", r.id, store.ErrNotFound)
	}
	r.set(o, at)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.off, nil
}

// RefreshReplicas reads, in one query, the committed offsets of those of
// the partitions (read here without being led here) whose last reading
// is older than ReplicaInterval: a fetch of many partitions calls it
// first, so that its reads cost Postgres one query, not one each.
func (m *Manager) RefreshReplicas(ctx context.Context, partitionIDs []int64) error {
	var stale []*replica
	for _, id := range partitionIDs {
		r := m.replicas.get(id)
		r.mu.Lock()
		if r.at.IsZero() || time.Since(r.at) >= m.cfg.ReplicaInterval {
			stale = append(stale, r)
		}
		r.mu.Unlock()
	}
	if len(stale) < 2 {
		return nil // ReadReplica reads one on its own
	}
	return m.readReplicaOffsets(ctx, stale)
}

// readReplicaOffsets reads the committed offsets of rs in one query and
// records them (waking their watchers where they moved).
func (m *Manager) readReplicaOffsets(ctx context.Context, rs []*replica) error {
	ids := make([]int64, len(rs))
	for i, r := range rs {
		ids[i] = r.id
	}
	at := time.Now()
	m.replicas.reads.Inc()
	got, err := m.store.CommittedOffsetsOf(ctx, ids)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if o, ok := got[r.id]; ok {
			r.set(o, at)
		}
	}
	return nil
}

// ReadReplica reads committed batches of a partition this broker does not
// lead, as Read (or, with committed, ReadCommitted) does on its leader,
// but up to the high watermark (or last stable offset) committed in
// Postgres, which lags the leader's by at most ReplicaInterval.
func (m *Manager) ReadReplica(ctx context.Context, partitionID, offset int64, maxBytes int, committed bool) (ReadResult, error) {
	r := m.replicas.get(partitionID)
	o, err := m.replicaOffsets(ctx, r, offset)
	if err != nil {
		return ReadResult{HighWatermark: -1, LastStable: -1, LogStart: -1}, err
	}
	res := ReadResult{HighWatermark: o.HighWatermark, LastStable: o.LastStable, LogStart: o.LogStartOffset}
	if offset < o.LogStartOffset || offset > o.HighWatermark {
		return res, fmt.Errorf("%w: %d is outside [%d, %d]", ErrOffsetOutOfRange, offset, o.LogStartOffset, o.HighWatermark)
	}
	limit := o.HighWatermark
	if committed {
		limit = o.LastStable
	}
	if offset >= limit {
		return res, nil
	}
	out := r.fromTail(offset, limit, maxBytes)
	if len(out) == 0 {
		out, err = m.readRemote(ctx, r, offset, limit, maxBytes)
		if err == nil {
			r.addTail(out, min(m.cfg.CacheBytes, replicaTailBytes))
		}
	}
	res.Records = out
	if err != nil {
		// A read below a log start retention moved: say the new start.
		r.mu.Lock()
		res.LogStart = max(res.LogStart, r.off.LogStartOffset)
		r.mu.Unlock()
		return res, err
	}
	if committed && len(out) > 0 {
		res.Aborted, err = m.store.AbortedTxns(ctx, partitionID, offset, endOf(out), 0)
	}
	return res, err
}

// fromTail returns the batches of the tail from the one holding offset,
// below limit, up to maxBytes (at least one batch); nil if the tail does
// not hold offset.
func (r *replica) fromTail(offset, limit int64, maxBytes int) []byte {
	r.mu.Lock()
	tail, base, end := r.tail, r.tailBase, r.tailEnd
	r.mu.Unlock()
	if len(tail) == 0 || offset < base || offset >= end {
		return nil
	}
	out, _, _ := appendFrom(nil, tail, offset, limit, maxBytes)
	return out
}

// addTail keeps b, batches just read, as the tail: appended when they
// continue it, else instead of it when they end after it (a reader far
// behind the head does not displace it); then the oldest batches go while
// it holds more than maxBytes.
func (r *replica) addTail(b []byte, maxBytes int) {
	if len(b) == 0 {
		return
	}
	base, end := int64(-1), int64(-1)
	batch.Each(b, func(h batch.Header, _ []byte) bool {
		if base < 0 {
			base = h.BaseOffset
		}
		end = h.LastOffset() + 1
		return true
	})
	if base < 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case len(r.tail) > 0 && base == r.tailEnd:
		// Bytes past len are nobody's: readers hold slices of [0, len).
		r.tail = append(r.tail, b...)
		r.tailEnd = end
	case len(r.tail) == 0 || end > r.tailEnd:
		r.tail, r.tailBase, r.tailEnd = append([]byte(nil), b...), base, end
	default:
		return
	}
	for len(r.tail) > maxBytes {
		h, err := batch.ParseHeader(r.tail)
		if err != nil || h.Size() >= len(r.tail) {
			break // keep the last batch
		}
		r.tail, r.tailBase = r.tail[h.Size():], h.LastOffset()+1
	}
}

// WatchReplica registers ch to receive a non-blocking send whenever the
// committed offsets of a partition read here without being led here move
// (polled every ReplicaInterval while watched); call stop when done.
func (m *Manager) WatchReplica(partitionID int64, ch chan<- struct{}) (stop func()) {
	r := m.replicas.get(partitionID)
	r.mu.Lock()
	r.watchers[ch] = struct{}{}
	r.mu.Unlock()
	select {
	case m.replicas.kick <- struct{}{}:
	default:
	}
	return func() {
		r.mu.Lock()
		delete(r.watchers, ch)
		r.used = time.Now()
		r.mu.Unlock()
	}
}

// runReplicas polls, every ReplicaInterval, the committed offsets of the
// partitions long polls wait on here without leading them, in one query,
// and forgets replicas unused for replicaIdle. It sleeps while nothing is
// watched. It returns when ctx ends.
func (m *Manager) runReplicas(ctx context.Context) {
	t := time.NewTicker(m.cfg.ReplicaInterval)
	defer t.Stop()
	backoff := time.Duration(0)
	for {
		watched := m.watchedReplicas()
		if len(watched) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-m.replicas.kick:
				continue
			case <-t.C: // forget idle replicas now and then
				continue
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := m.readReplicaOffsets(ctx, watched); err != nil {
			if ctx.Err() != nil {
				return
			}
			m.log.Warn("replica offsets poll failed", "partitions", len(watched), "err", err)
			backoff = min(max(2*backoff, 50*time.Millisecond), 2*time.Second)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
	}
}

// watchedReplicas returns the replicas long polls wait on, and forgets
// those nobody used for replicaIdle.
func (m *Manager) watchedReplicas() []*replica {
	m.replicas.mu.Lock()
	defer m.replicas.mu.Unlock()
	var out []*replica
	now := time.Now()
	for id, r := range m.replicas.parts {
		r.mu.Lock()
		n, used := len(r.watchers), r.used
		r.mu.Unlock()
		switch {
		case n > 0:
			out = append(out, r)
		case now.Sub(used) > replicaIdle:
			delete(m.replicas.parts, id)
		}
	}
	return out
}
